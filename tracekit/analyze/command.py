"""The ``tracekit analyze`` command: a thin layer over :mod:`tracekit.analyze.api`.

Exit codes: 0 when something was analysed (input problems are warnings on stderr), 2 when nothing
usable was read or an argument is wrong (one line on stderr naming the file and the problem). Library
errors (:mod:`tracekit.errors`) become that line here; no traceback reaches the user
(``TRACEKIT_DEBUG=1`` re-raises unexpected errors, for bug reports).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import IO, Any

import click

from tracekit.analyze.model import Trace
from tracekit.errors import RendererOptionError, TraceFormatError, TracekitError
from tracekit.outputs import prepare_output

#: Warnings printed one by one before the rest are only counted.
MAX_WARNINGS_SHOWN = 10
#: Failed traces drawn by the text renderer besides the slowest ones.
TEXT_FAILED_TRACES = 3


class WarningSink:
    """Print the first warnings to stderr, count the rest, summarise at the end.

    Warnings are held back until something usable has been read (:meth:`release`): when nothing
    was, the command fails with its one error line and the held warnings are dropped, so stderr
    stays one line (the error names the first problem).
    """

    def __init__(self, limit: int = MAX_WARNINGS_SHOWN) -> None:
        self.limit = limit
        self.count = 0
        self.held: list[str] | None = []

    def __call__(self, message: str) -> None:
        self.count += 1
        if self.count <= self.limit:
            if self.held is not None:
                self.held.append(message)
            else:
                click.echo(f"warning: {message}", err=True)

    def release(self) -> None:
        """Input was usable: print what was held and print further warnings at once."""
        held, self.held = self.held, None
        for message in held or ():
            click.echo(f"warning: {message}", err=True)

    def add_counted(self, shown: list[str], total: int) -> None:
        """Warnings gathered elsewhere (parallel workers): the first ones, and how many in all."""
        for message in shown:
            self(message)
        self.count += total - len(shown)

    def discard(self) -> None:
        self.held = []
        self.count = 0

    def finish(self) -> None:
        self.release()
        hidden = self.count - self.limit
        if hidden > 0:
            click.echo(
                f"warning: ... and {hidden:,} more warning(s) not shown ({self.count:,} in all; "
                "--warnings N shows more, JSON output lists them per trace)",
                err=True,
            )


class _OneLineUsageError(click.UsageError):
    """A bad option value (``--slowest 0``, ``--warnings x``) as the command's one error line.

    Click prints usage errors as three lines (usage, a hint, the error); every other error of the
    command is one line naming the problem, and scripts read stderr that way.
    """

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"tracekit analyze: error: {self.format_message()}", err=True)


class _AnalyzeCommand(click.Command):
    """``click.Command`` whose argument errors are one line on stderr (exit code 2, as before)."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            raise _OneLineUsageError(exc.format_message(), exc.ctx) from None


def _fail(message: str) -> None:
    click.echo(f"tracekit analyze: error: {message}", err=True)
    sys.exit(2)


def _output_format(fmt: str | None, output: str | None) -> str:
    from tracekit.analyze.renderers import format_for_path

    if fmt is not None:
        return fmt
    if output is None or output == "-":
        return "text"
    guessed = format_for_path(output)
    if guessed is None:
        raise RendererOptionError(
            f"{output}: cannot tell the output format from the suffix "
            "(use .json, .html or .txt, or give --format)"
        )
    return guessed


def _traces(
    paths: tuple[str, ...],
    jaeger: dict[str, Any] | None,
    sink: WarningSink,
    errors: list[str],
) -> Iterator[Trace]:
    """Every trace of every source; a source that yields nothing usable is an error, kept for later."""
    yield from _read_sources([(path, None) for path in paths], sink, errors, more=jaeger is not None)
    if jaeger is not None:
        try:
            from tracekit.analyze.readers.jaeger_api import fetch_traces
        except ImportError as exc:
            errors.append(f"the Jaeger source is not available in this build ({exc})")
            return
        ids = jaeger.pop("trace_ids") or [None]
        for trace_id in ids:
            try:
                yield from fetch_traces(jaeger["url"], trace_id=trace_id, on_warning=sink, **jaeger["query"])
            except TracekitError as exc:
                errors.append(str(exc))


@contextlib.contextmanager
def _open_output(output: str | None, binary: bool) -> Iterator[IO[Any]]:
    if output is None or output == "-":
        yield sys.stdout.buffer if binary else sys.stdout
        return
    try:
        handle = open(output, "wb" if binary else "w", encoding=None if binary else "utf-8")  # noqa: SIM115
    except OSError as exc:
        raise RendererOptionError(f"{output}: cannot write: {exc.strerror or exc}") from None
    try:
        yield handle
    except BaseException:
        handle.close()
        with contextlib.suppress(OSError):
            os.unlink(output)
        raise
    handle.close()


@click.command("analyze", cls=_AnalyzeCommand)
@click.argument("paths", nargs=-1, metavar="PATH...")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "html", "jaeger"]),
    help="Output format (default: from the -o suffix, else text).",
)
@click.option("-o", "--output", metavar="FILE", help="Write to FILE; .json/.html/.txt pick the format.")
@click.option(
    "--rules", "rules_path", metavar="FILE", help="YAML file of extra layer rules (docs/analyzer.md)."
)
@click.option(
    "--trace-id", "trace_ids", multiple=True, metavar="ID", help="Analyse only this trace (repeatable)."
)
@click.option(
    "--slowest",
    type=click.IntRange(min=1),
    metavar="N",
    help="Report the N slowest traces (text default: 1, plus failed ones); the summary counts all.",
)
@click.option(
    "--jaeger", "jaeger_url", metavar="URL", help="Read traces from a Jaeger query service (API v3)."
)
@click.option("--service", metavar="NAME", help="With --jaeger: the service whose traces to fetch.")
@click.option(
    "--lookback",
    default="1h",
    show_default=True,
    metavar="DURATION",
    help="With --jaeger: how far back (30m, 2d).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    metavar="N",
    help="With --jaeger: how many traces to fetch.",
)
@click.option("--no-skew", is_flag=True, help="Do not adjust clock skew between hosts.")
@click.option(
    "--jobs",
    "-j",
    default="auto",
    show_default=True,
    metavar="N|auto",
    help="Worker processes for text and JSON output of big files (auto: a core each, up to 8, from 64 MiB).",
)
@click.option(
    "--warnings",
    "max_warnings",
    type=click.IntRange(min=0),
    default=MAX_WARNINGS_SHOWN,
    show_default=True,
    metavar="N",
    help="Warnings printed on stderr before the rest are counted.",
)
def analyze(max_warnings: int, **options: Any) -> None:
    """Where did the time go, and where did it break? Analyse exported traces.

    Reads OTLP JSON (Collector file exporter lines or one document), Jaeger JSON or Zipkin v2 JSON
    (format detected from content; .gz and - for stdin work), or fetches traces from Jaeger with
    --jaeger. Prints, per layer (client, edge, ingress, service, app, sidecar, db, external), how much
    of each request's latency went there, draws the slowest requests' hop-by-hop timeline, and names
    the layer where failed requests broke.

    Exit status: 0 on success (input problems are warnings), 2 when nothing usable was read or an
    argument is wrong.
    """
    sink = WarningSink(max_warnings)
    try:
        # The options go to _run by name: its signature is the one typed list of them.
        _run(sink=sink, **options)
    except TracekitError as exc:
        sink.discard()
        _fail(str(exc))
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        # The reader went away (| head): silence the interpreter's final flush of stdout.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except OSError as exc:  # writing the output failed (disk full, ...)
        sink.finish()
        _fail(f"{options.get('output') or 'stdout'}: cannot write: {exc.strerror or exc}")
    except Exception as exc:  # never a traceback for the user
        if os.environ.get("TRACEKIT_DEBUG"):
            raise
        click.echo(
            f"tracekit analyze: internal error (please report): {exc.__class__.__name__}: {exc}", err=True
        )
        sys.exit(1)
    sink.finish()


def _run(
    paths: tuple[str, ...],
    fmt: str | None,
    output: str | None,
    rules_path: str | None,
    trace_ids: tuple[str, ...],
    slowest: int | None,
    jaeger_url: str | None,
    service: str | None,
    lookback: str,
    limit: int,
    no_skew: bool,
    jobs: str,
    sink: WarningSink,
) -> None:
    from tracekit.analyze.api import Analysis, normalize_trace_id
    from tracekit.analyze.processors import Options
    from tracekit.analyze.renderers import get_renderer
    from tracekit.analyze.rules import load_rules

    if not paths and not jaeger_url:
        raise TracekitError("no input: give trace files (PATH..., - for stdin) or --jaeger URL")
    if jaeger_url and not service and not trace_ids:
        raise TracekitError("--jaeger needs --service NAME or --trace-id ID")
    if not jaeger_url and (service or lookback != "1h" or limit != 20):
        raise TracekitError("--service, --lookback and --limit only apply with --jaeger URL")
    from tracekit.analyze import parallel

    parallel.parse_jobs(jobs)  # a bad value is an error whatever the format, and before any work
    _check_output_not_input(output, paths, rules_path)
    if not jaeger_url:  # the Jaeger source checks its ids itself (hex only: they go into the URL)
        for trace_id in trace_ids:
            normalize_trace_id(trace_id)
    out_format = _output_format(fmt, output)
    renderer = (
        get_renderer(out_format, color=output in (None, "-") and sys.stdout.isatty())
        if out_format == "text"
        else get_renderer(out_format)
    )
    options = Options(rules=load_rules(rules_path), adjust_skew=not no_skew)
    if output not in (None, "-"):
        prepare_output(output)  # the last check before any work: a missing directory is created
    if out_format == "html" and slowest is None and not jaeger_url and paths.count("-") <= 1:
        _run_html(paths, output, options, trace_ids, sink)
        return

    n_jobs = parallel.choose_jobs(jobs, paths)
    # What the text and JSON outputs keep of the traces besides the summary: (slowest, failed)
    # reports, or None for JSON of every trace (streamed).
    keep = None
    if out_format == "text":
        keep = (slowest or 1, TEXT_FAILED_TRACES)
    elif out_format == "json" and slowest is not None:
        keep = (slowest, 0)
    if out_format in ("json", "text") and not jaeger_url and n_jobs > 1:
        result = _run_parallel(paths, output, rules_path, trace_ids, no_skew, n_jobs, sink, keep)
        if result is not None:
            _render(result, out_format, output, renderer)
        return
    jaeger = None
    if jaeger_url:
        jaeger = {
            "url": jaeger_url,
            "trace_ids": list(trace_ids),
            "query": {"service": service, "lookback": lookback, "limit": limit},
        }
    errors: list[str] = []
    traces = _traces(paths, jaeger, sink, errors)

    if keep is not None:
        analysis = Analysis(options, trace_ids=trace_ids, slowest=keep[0], failed=keep[1], on_warning=sink)
    else:
        analysis = Analysis(
            options, trace_ids=trace_ids, slowest=slowest, include_spans=renderer.needs_spans, on_warning=sink
        )

    if out_format == "json" and slowest is None:
        from tracekit.analyze.renderers.json import stream_json

        reports = (r for r in map(analysis.analyse, traces) if r is not None)
        first = next(reports, None)
        _check_usable(analysis.aggregator.traces, errors, trace_ids, sink)
        with _open_output(output, binary=True) as out:
            stream_json(out, _chain(first, reports), analysis.summary)
        return

    if renderer.input == "traces":
        kept = _keep_traces(analysis, traces, slowest)
        _check_usable(analysis.aggregator.traces, errors, trace_ids, sink)
        text = renderer.render(kept)
    else:
        for trace in traces:
            analysis.add(trace)
        _check_usable(analysis.aggregator.traces, errors, trace_ids, sink)
        _render(analysis.report(), out_format, output, renderer)
        return
    with _open_output(output, binary=False) as out:
        out.write(text)


def _check_output_not_input(output: str | None, paths: tuple[str, ...], rules_path: str | None) -> None:
    """``-o`` naming an input file would truncate it while it is being read (a JSONL input is
    streamed): the input is lost and the report covers whatever was read before. Refuse it."""
    if output is None or output == "-" or not os.path.exists(output):
        return
    for path in (*paths, *([rules_path] if rules_path else [])):
        if path == "-":
            continue
        with contextlib.suppress(OSError):
            if os.path.samefile(output, path):
                raise RendererOptionError(f"{output}: the output file is also an input; give another -o FILE")


def _render(report: dict[str, Any], out_format: str, output: str | None, renderer: Any) -> None:
    """Write a whole report (``{"summary", "traces"}``): the text renderer prints to a terminal."""
    if out_format == "text" and output in (None, "-"):
        from rich.console import Console

        from tracekit.analyze.renderers.text import console_width, print_report

        print_report(report, Console(highlight=False, width=console_width(sys.stdout)))
        return
    with _open_output(output, binary=False) as out:
        out.write(renderer.render(report))


def _run_html(
    paths: tuple[str, ...], output: str | None, options: Any, trace_ids: tuple[str, ...], sink: WarningSink
) -> None:
    """HTML output in two reads of the input: memory bounded by the open traces, not by the file.

    Read 1 folds each trace report into the page's aggregates (``renderers/html.py`` ViewBuilder:
    a compact record per trace, the spans dropped). The sampled traces are then known; read 2
    analyses only those (same input, same deterministic analysis: the same reports). Stdin is spooled
    to a temporary file so it can be read twice. Jaeger input and ``--slowest`` (both small by
    construction) keep the one-read path in :func:`_run`.
    """
    from tracekit.analyze.api import Analysis
    from tracekit.analyze.processors.timeline import hops_as_dicts
    from tracekit.analyze.renderers.html import FlowBuilder, ViewBuilder, render_view

    with _spool_stdin(paths) as sources:
        errors: list[str] = []
        analysis = Analysis(options, trace_ids=trace_ids, include_spans=True, on_warning=sink)
        builder = ViewBuilder()
        for trace in _read_sources(sources, sink, errors):
            report = analysis.analyse(trace)
            if report is not None:
                if not report.get("spans"):
                    report["hops"] = hops_as_dicts(report["hops"])
                builder.add(report)
        _check_usable(analysis.aggregator.traces, errors, trace_ids, sink)
        assert builder.flow is not None
        wanted, repeated = builder.sample_candidates()
        # Rare: replicas folded into one box call each other; the diagram is redone on read 2.
        flow = FlowBuilder(builder.flow.fold()) if builder.flow.ambiguous() else None
        last: dict[Any, dict[str, Any]] = {}
        copies: dict[Any, list[dict[str, Any]]] = {tid: [] for tid in repeated}
        again = Analysis(options, trace_ids=trace_ids, include_spans=True)
        for trace in _read_sources(sources, _ignore_warning, []):
            if flow is None and trace.trace_id not in wanted:
                continue
            report = again.analyse(trace)
            if report is None:
                continue
            report["hops"] = hops_as_dicts(report["hops"])
            if flow is not None:
                flow.add(report)
            tid = report["trace_id"]
            if tid in wanted:
                last[tid] = report
                if tid in copies:
                    copies[tid].append(report)
        if flow is not None:
            builder.flow = flow
    chosen = builder.select_samples(same=_same_report(builder, copies))
    missing = [tid for tid, _ in chosen if tid not in last]
    if missing:
        raise TracekitError(f"the input changed while being read: trace {missing[0]} gone on the second read")
    summary = analysis.summary()
    page = render_view(builder.view(summary, (), [(last[tid], why) for tid, why in chosen]))
    with _open_output(output, binary=False) as out:
        out.write(page)


def _ignore_warning(message: str) -> None:
    """Read 2 of the HTML path: its warnings were all printed by read 1."""


def _same_report(builder: Any, copies: dict[Any, list[dict[str, Any]]]) -> Any:
    """``same(i, j)`` for ViewBuilder.select_samples: are the i-th and j-th reports equal dicts?

    Only asked about failed traces that share a trace id (the same file given twice, say); the k-th
    report with an id on read 2 is the k-th with that id on read 1.
    """
    occurrence: dict[int, int] = {}
    if copies:
        seen: dict[Any, int] = {}
        for index in range(builder.count):
            tid = builder.ids[index]
            if tid in copies:
                occurrence[index] = seen.get(tid, 0)
                seen[tid] = occurrence[index] + 1

    def same(i: int, j: int) -> bool:
        ids = builder.ids
        return copies[ids[i]][occurrence[i]] == copies[ids[j]][occurrence[j]]

    return same


@contextlib.contextmanager
def _spool_stdin(paths: tuple[str, ...]) -> Iterator[list[tuple[str, str | None]]]:
    """(path, display name) per input; ``-`` (stdin) copied to a temporary file so it can be read twice."""
    if "-" not in paths:
        yield [(p, None) for p in paths]
        return
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix="tracekit-stdin-") as tmp:
        spool = os.path.join(tmp, "stdin")
        with open(spool, "wb") as f:
            shutil.copyfileobj(sys.stdin.buffer, f, 1 << 20)
        yield [(spool, "<stdin>") if p == "-" else (p, None) for p in paths]


def _read_sources(
    sources: list[tuple[str, str | None]], on_warning: Any, errors: list[str], *, more: bool = False
) -> Iterator[Trace]:
    """Every trace of every file, with a display name per source (``None``: the path; spooled stdin
    says ``<stdin>``). A file with nothing usable is kept in ``errors`` for later, and is also a
    warning when other sources remain (several files, or ``more`` to come)."""
    from tracekit.analyze.readers import read_traces

    for path, name in sources:
        try:
            yield from read_traces(path, on_warning=on_warning, name=name)
        except TraceFormatError as exc:
            errors.append(str(exc))
            if len(sources) > 1 or more:
                on_warning(str(exc))


def _chain(first: dict[str, Any] | None, rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    if first is not None:
        yield first
    yield from rest


def _keep_traces(analysis: Any, traces: Iterator[Trace], slowest: int | None) -> list[Trace]:
    """Trace objects for the Jaeger renderer: all analysed ones, or the N slowest."""
    import heapq

    kept: list[tuple[float, int, Trace]] = []
    for seq, trace in enumerate(traces):
        report = analysis.analyse(trace)
        if report is None:
            continue
        item = (report["duration_ms"], -seq, trace)
        if slowest is None:
            kept.append(item)
        elif len(kept) < slowest:
            heapq.heappush(kept, item)
        elif item > kept[0]:
            heapq.heapreplace(kept, item)
    if slowest is None:
        return [t for _, _, t in kept]
    return [t for _, _, t in sorted(kept, reverse=True)]


def _run_parallel(
    paths: tuple[str, ...],
    output: str | None,
    rules_path: str | None,
    trace_ids: tuple[str, ...],
    no_skew: bool,
    jobs: int,
    sink: WarningSink,
    keep: tuple[int, int] | None,
) -> dict[str, Any] | None:
    """Analyse with worker processes (``parallel.py``): the same result as one process.

    Without ``keep`` (JSON of every trace) the report is written here, merged from the workers'
    files, and None is returned; with ``keep=(slowest, failed)`` the report to render is returned.
    """
    from tracekit.analyze import parallel

    with parallel.work_directory(output) as work_dir:
        result = parallel.analyze_parallel(
            paths,
            jobs,
            work_dir,
            rules_path=rules_path,
            adjust_skew=not no_skew,
            trace_ids=trace_ids,
            warning_limit=sink.limit,
            keep=keep,
        )
        sink.add_counted(result.warnings, result.warning_count)
        _check_usable(result.aggregator.traces, result.errors, trace_ids, sink)
        if keep is not None:
            return {"summary": result.aggregator.summary(), "traces": result.kept(*keep)}
        with _open_output(output, binary=True) as out:
            parallel.write_json(out, result)
    return None


def _check_usable(traces: int, errors: list[str], trace_ids: tuple[str, ...], sink: WarningSink) -> None:
    """Nothing analysed is an error (exit 2): say why in one line. Otherwise let warnings out."""
    if traces:
        sink.release()
        return
    if errors:
        more = f" (and {len(errors) - 1} more unusable input(s))" if len(errors) > 1 else ""
        raise TracekitError(errors[0] + more)
    if trace_ids:
        raise TracekitError(f"trace id(s) {', '.join(trace_ids)} not found in the input")
    raise TracekitError("no traces found in the input")

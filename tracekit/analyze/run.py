"""What ``tracekit analyze`` does with its options: plan the analysis, run it, write the report.

The command (``command.py``) parses options and turns errors into its one line; this module decides
the path:

- trace **files** (and standard input) for text and JSON output go through the partitioned plan
  (``plan.py``, ``mapreduce.py``): each input chunk decoded once, spans partitioned by trace id,
  each partition analysed on its own, the results merged (:func:`run_partitioned`). The executor
  (``executors.py``) is this process for small inputs and ``--jobs 1``, a local process pool for
  large ones, or a Dask cluster with ``--scheduler``; the report is the same on all of them;
- the **Jaeger query service** (``--jaeger``) answers a bounded number of traces: read and analysed
  in this process, as they come;
- the **HTML report** reads its input twice (``docs/report.md``) and the **Jaeger output** keeps
  Trace objects: both stream the readers in this process.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from tracekit.analyze.model import Trace
from tracekit.errors import TraceFormatError, TracekitError
from tracekit.outputs import check_output_not_input, open_output, output_format, prepare_output

#: Failed traces drawn by the text renderer besides the slowest ones.
TEXT_FAILED_TRACES = 3


def run(
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
    scheduler: str | None,
    work_dir: str | None,
    sink: Any,
) -> None:
    """Analyse and write the report; warnings go to ``sink`` (the command's :class:`WarningSink`).

    :raises TracekitError: a bad option or nothing usable (one line).
    """
    from tracekit.analyze.api import Analysis, normalize_trace_id
    from tracekit.analyze.executors import SCHEDULER_ENV
    from tracekit.analyze.plan import parse_jobs
    from tracekit.analyze.processors import Options
    from tracekit.analyze.renderers import get_renderer
    from tracekit.analyze.rules import load_rules

    if not paths and not jaeger_url:
        raise TracekitError("no input: give trace files (PATH..., - for stdin) or --jaeger URL")
    if jaeger_url and not service and not trace_ids:
        raise TracekitError("--jaeger needs --service NAME or --trace-id ID")
    if not jaeger_url and (service or lookback != "1h" or limit != 20):
        raise TracekitError("--service, --lookback and --limit only apply with --jaeger URL")
    parse_jobs(jobs)  # a bad value is an error whatever the format, and before any work
    scheduler = scheduler or os.environ.get(SCHEDULER_ENV) or None
    check_output_not_input(output, (*paths, *([rules_path] if rules_path else [])))
    if not jaeger_url:  # the Jaeger source checks its ids itself (hex only: they go into the URL)
        for trace_id in trace_ids:
            normalize_trace_id(trace_id)
    out_format = output_format(fmt, output)
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

    # What the text and JSON outputs keep of the traces besides the summary: (slowest, failed)
    # reports, or None for JSON of every trace (streamed).
    keep = None
    if out_format == "text":
        keep = (slowest or 1, TEXT_FAILED_TRACES)
    elif out_format == "json" and slowest is not None:
        keep = (slowest, 0)
    if out_format in ("json", "text") and not jaeger_url:
        request = Request(
            paths=list(paths),
            rules_path=rules_path,
            adjust_skew=not no_skew,
            trace_ids=list(trace_ids),
            keep=keep,
            warning_limit=sink.limit,
        )
        result = run_partitioned(request, output, sink, jobs=jobs, scheduler=scheduler, work_dir=work_dir)
        if result is not None:
            _render(result, out_format, output, renderer)
        return
    if scheduler is not None and not jaeger_url:
        raise TracekitError(f"--scheduler: {out_format} output is made in this process (use text or json)")
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
        with open_output(output, binary=True) as out:
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
    with open_output(output, binary=False) as out:
        out.write(text)


def _traces(
    paths: tuple[str, ...],
    jaeger: dict[str, Any] | None,
    sink: Any,
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


def _render(report: dict[str, Any], out_format: str, output: str | None, renderer: Any) -> None:
    """Write a whole report (``{"summary", "traces"}``): the text renderer prints to a terminal."""
    if out_format == "text" and output in (None, "-"):
        from rich.console import Console

        from tracekit.analyze.renderers.text import console_width, print_report

        print_report(report, Console(highlight=False, width=console_width(sys.stdout)))
        return
    with open_output(output, binary=False) as out:
        out.write(renderer.render(report))


def _run_html(
    paths: tuple[str, ...], output: str | None, options: Any, trace_ids: tuple[str, ...], sink: Any
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
    with open_output(output, binary=False) as out:
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


def _check_usable(traces: int, errors: list[str], trace_ids: tuple[str, ...], sink: Any) -> None:
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


# -- the partitioned analysis ----------------------------------------------------------------------


@dataclass
class Request:
    """What to analyse, as plain data (the library's entry point too: :func:`execute`)."""

    paths: list[str]
    rules_path: str | None = None
    adjust_skew: bool = True
    trace_ids: list[str] = field(default_factory=list)
    #: ``(slowest, failed)``: keep only those reports (text output, ``--slowest``); None: all of them.
    keep: tuple[int, int] | None = None
    #: Warnings the user sees one by one (the rest are counted).
    warning_limit: int = 10
    format: str | None = None
    #: Plan knobs (``plan.make_plan``); None: the defaults. They never change the report.
    chunk_bytes: int | None = None
    partitions: int | None = None


@dataclass
class Outcome:
    """The merged result of a partitioned run: what the command needs to write the report."""

    aggregator: Any
    #: The first ``warning_limit`` warnings in read order, and how many there were in all.
    warnings: list[str]
    warning_count: int
    #: Inputs that held nothing usable (one line each), in input order.
    errors: list[str]
    #: The reduce tasks' trace files (place-prefixed JSON lines), by partition.
    results: list[str]
    selections: list[Any]
    partitions: int
    chunks: int
    #: Largest peak RSS of any task's process, in KiB.
    max_rss_kb: int

    def kept(self, slowest: int, failed: int) -> list[dict[str, Any]]:
        """With ``Request.keep``: the reports one process would keep (:meth:`Analysis.kept`)."""
        from tracekit.analyze.api import choose

        return choose(self.selections, slowest, failed)


def execute(request: Request, executor: Any, storage: str) -> Outcome:
    """Plan, map, reduce and merge (``plan.py``, ``mapreduce.py``); streams and results stay in
    ``storage`` (the caller removes it after writing the report).

    :raises TracekitError: a task met a library error (its one line).
    """
    from tracekit.analyze.mapreduce import ReduceTask, map_chunk, reduce_partition, stream_url
    from tracekit.analyze.plan import inspect_inputs, make_plan
    from tracekit.analyze.processors.aggregates import exact_values, merge_aggregators

    budget = exact_values()
    rules = None
    if request.rules_path is not None:
        from tracekit.analyze.rules import load_rules

        load_rules(request.rules_path)  # a bad file is one line, before any work
        with open(request.rules_path, encoding="utf-8") as f:
            rules = (request.rules_path, f.read())
    found = inspect_inputs(request.paths, storage, format=request.format)
    plan = make_plan(
        found,
        storage,
        workers=executor.workers,
        chunk_bytes=request.chunk_bytes,
        partitions=request.partitions,
    )
    maps = executor.map(map_chunk, plan.maps)
    reduce_tasks = [
        ReduceTask(
            partition=p,
            streams=[stream_url(storage, m.chunk, p) for m in maps if p in m.written],
            names=plan.names,
            storage=storage,
            rules=rules,
            adjust_skew=request.adjust_skew,
            trace_ids=request.trace_ids,
            warning_limit=request.warning_limit,
            keep=request.keep,
            exact_budget=budget,
        )
        for p in range(plan.partitions)
    ]
    reduces = executor.map(reduce_partition, [t for t in reduce_tasks if t.streams])
    for result in reduces:
        if result.fatal is not None:
            raise TracekitError(result.fatal)
    warnings, count, errors = _merge_warnings(plan, maps, reduces, request.warning_limit)
    return Outcome(
        aggregator=merge_aggregators([r.aggregator for r in reduces]),
        warnings=warnings,
        warning_count=count,
        errors=errors,
        results=[r.result for r in reduces if r.result is not None],
        selections=[r.selection for r in reduces if r.selection is not None],
        partitions=plan.partitions,
        chunks=len(plan.maps),
        max_rss_kb=max([m.max_rss_kb for m in maps] + [r.max_rss_kb for r in reduces] + [0]),
    )


#: Warning keys past every line of a file: the reader's closing count, then the file's error.
_END = 1 << 62


def _merge_warnings(
    plan: Any, maps: list[Any], reduces: list[Any], limit: int
) -> tuple[list[str], int, list[str]]:
    """Every task's warnings as one process would print them: numbered by global line, capped per
    file as the readers cap them, in read order; and the files that held nothing usable.

    A file's warnings come in the order of the place they concern (a line, or a trace's first
    span); the readers' cap (the first 50 per file, then a count) applies per file.
    """
    from tracekit.analyze.readers import LABELS, DocumentEnd, document_verdict, unusable_error
    from tracekit.analyze.readers.common import MAX_REPORTED_WARNINGS

    by_file: dict[int, list[Any]] = {}
    for m in maps:
        by_file.setdefault(m.file, []).append(m)
    keyed: list[tuple[tuple[int, ...], str]] = []
    count = 0
    errors: dict[int, str] = dict(plan.errors)
    fmt_of = {item.index: item.fmt for item in plan.inputs}
    for f, chunks in by_file.items():
        name = plan.names[f]
        base = 0
        shown: list[tuple[tuple[int, ...], str]] = []
        total = 0
        first_error = None
        spans_ok = 0
        first_place: tuple[int, int] | None = None
        ends = []
        for m in sorted(chunks, key=lambda m: m.chunk):
            for seq, (line, offset, message) in enumerate(m.warnings):
                where = name if line is None else f"{name}:{base + line}"
                shown.append(((f, offset, -1, seq), f"{where}: {message}"))
            if m.first_error is not None:
                # the first in the file: chunks of lines follow each other, parts of a document
                # interleave (their places are element numbers)
                line, offset, message = m.first_error
                if first_place is None or (offset, m.chunk) < first_place:
                    first_place = (offset, m.chunk)
                    first_error = (None if line is None else base + line, message)
            total += m.warning_count
            spans_ok += m.spans_ok
            if m.error is not None and f not in errors:
                errors[f] = m.error
            if m.document_end is not None:
                ends.append(m.document_end)
            base += m.lines
        if ends:
            document_end = DocumentEnd.of_parts(ends)
            error, warning = document_verdict(document_end, spans_ok, name)
            if error is not None and f not in errors:
                errors[f] = str(error)
            if warning is not None:
                total += 1
                shown.append(((f, document_end.stop_at or 0, -1, _END), f"{name}: {warning}"))
        for r in reduces:
            total += r.input_warning_count.get(f, 0)
            shown.extend(item for item in r.input_warnings if item[0][0] == f)
        shown.sort()
        shown = shown[:MAX_REPORTED_WARNINGS]
        if total > MAX_REPORTED_WARNINGS:
            hidden = total - MAX_REPORTED_WARNINGS
            shown.append(((f, _END, 0, 0), f"{name}: {hidden} more warnings not shown"))
        keyed += shown
        count += len(shown)
        if spans_ok == 0 and f not in errors:
            errors[f] = str(unusable_error(first_error, total, LABELS[fmt_of[f]], name))
    if len(plan.names) > 1:
        # With other inputs left, a file that held nothing usable is a warning too.
        for f, message in errors.items():
            keyed.append(((f, _END, 1, 0), message))
            count += 1
    for r in reduces:
        keyed += r.warnings
        count += r.warning_count
    keyed.sort()
    return [message for _, message in keyed[:limit]], count, [errors[f] for f in sorted(errors)]


def write_json(out: IO[bytes], outcome: Outcome) -> int:
    """Write the report exactly as ``renderers.json.stream_json`` would; return the traces written.

    Each partition's file is in read order already; merging them by their place prefix puts every
    trace in the order of its first span in the input.
    """
    from tracekit.analyze.mapreduce import PLACE_BYTES, open_read
    from tracekit.analyze.renderers.json import STREAM_HEAD, STREAM_SEPARATOR, stream_tail

    write = out.write
    write(STREAM_HEAD)
    count = 0
    buf = bytearray()
    with contextlib.ExitStack() as stack:
        files = [stack.enter_context(open_read(url)) for url in outcome.results]
        for line in heapq.merge(*files, key=lambda line: line[:PLACE_BYTES]):
            if count:
                buf += STREAM_SEPARATOR
            buf += memoryview(line)[PLACE_BYTES:-1]
            count += 1
            if len(buf) > 1 << 20:
                write(buf)
                buf.clear()
    write(buf)
    write(stream_tail(outcome.aggregator.summary()))
    return count


@contextlib.contextmanager
def executor_for(jobs: str, scheduler: str | None, inputs: Any) -> Iterator[Any]:
    """The executor a run uses: Dask with a scheduler address, else by ``--jobs`` and input size."""
    from tracekit.analyze.executors import DaskExecutor, InProcess, LocalPool
    from tracekit.analyze.plan import local_workers

    ex: Any
    if scheduler:
        ex = DaskExecutor(scheduler)
    else:
        n = local_workers(jobs, inputs)
        ex = InProcess() if n == 1 else LocalPool(n)
    try:
        yield ex
    finally:
        ex.close()


@contextlib.contextmanager
def work_storage(work_dir: str | None, output: str | None) -> Iterator[str]:
    """Where the partitions go, removed afterwards: a fresh directory under ``work_dir`` (a path or
    an fsspec URL every worker can reach), else a temporary directory next to the output file (the
    streams hold about as much as the input; the system temp directory may be memory)."""
    import uuid

    from tracekit.analyze.mapreduce import join, remove_storage
    from tracekit.analyze.readers.common import is_url

    if work_dir is not None:
        url = join(work_dir, f"tracekit-analyze-{uuid.uuid4().hex[:12]}")
        if not is_url(url):
            try:
                os.makedirs(url)
            except OSError as exc:
                raise TracekitError(f"--work-dir {work_dir}: cannot create: {exc.strerror or exc}") from None
        try:
            yield url
        finally:
            remove_storage(url)
        return
    where = None
    if output not in (None, "-"):
        where = os.path.dirname(os.path.abspath(output))
    try:
        tmp = tempfile.TemporaryDirectory(prefix=".tracekit-analyze-", dir=where)
    except OSError:
        tmp = tempfile.TemporaryDirectory(prefix="tracekit-analyze-")
    with tmp as path:
        yield path


def run_partitioned(
    request: Request,
    output: str | None,
    sink: Any,
    *,
    jobs: str = "auto",
    scheduler: str | None = None,
    work_dir: str | None = None,
) -> dict[str, Any] | None:
    """Run the partitioned analysis and finish like the command does.

    Without ``request.keep`` (JSON of every trace) the report is written to ``output`` here and
    None is returned; with it, the report to render is returned.
    """
    from tracekit.analyze.plan import inspect_inputs

    with work_storage(work_dir, output) as storage:
        # The executor depends on the inputs' size; inspecting them twice costs two 64 KiB reads.
        sizes = inspect_inputs([p for p in request.paths if p != "-"], storage, format=request.format)
        if "-" in request.paths:
            sizes.inputs.append(_stdin_input())
        with executor_for(jobs, scheduler, sizes.inputs) as ex:
            outcome = execute(request, ex, storage)
        sink.add_counted(outcome.warnings, outcome.warning_count)
        _check_usable(outcome.aggregator.traces, outcome.errors, tuple(request.trace_ids), sink)
        if request.keep is not None:
            return {"summary": outcome.aggregator.summary(), "traces": outcome.kept(*request.keep)}
        with open_output(output, binary=True) as out:
            write_json(out, outcome)
    return None


def _stdin_input() -> Any:
    """Standard input for the executor choice: it stays in this process unless ``--jobs N`` says
    otherwise (its size is unknown; a pool would cost more than it saves on the usual pipe)."""
    from tracekit.analyze.plan import Input

    return Input(-1, "-", "<stdin>", "otlp", True, 0, False)

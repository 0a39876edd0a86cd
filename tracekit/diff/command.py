"""The ``tracekit diff`` command: which layer of the request path got slower between two captures.

Exit codes: 0 whatever the verdict (1 with ``--fail-on-regression`` when something regressed), 2 when a
side has nothing usable or an argument is wrong (one line on stderr naming the file and the problem).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from tracekit.analyze.command import MAX_WARNINGS_SHOWN
from tracekit.commandline import OneLineCommand, run_command
from tracekit.diff.compare import DiffOptions, diff
from tracekit.diff.sides import ReadOptions, Side, expand, read_side
from tracekit.errors import TracekitError
from tracekit.outputs import check_output_not_input, open_output, output_format, prepare_output

#: From this much input (both sides, bytes) ``--jobs auto`` reads the two sides at once.
PARALLEL_BYTES = 32 << 20


@click.command("diff", cls=OneLineCommand)
@click.argument("sides", nargs=-1, metavar="BASELINE CANDIDATE")
@click.option(
    "-b", "--baseline", "baseline", multiple=True, metavar="PATH", help="Another baseline input (repeatable)."
)
@click.option(
    "-c",
    "--candidate",
    "candidate",
    multiple=True,
    metavar="PATH",
    help="Another candidate input (repeatable).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "html"]),
    help="Output format (default: from the -o suffix, else text).",
)
@click.option("-o", "--output", metavar="FILE", help="Write to FILE; .json/.html/.txt pick the format.")
@click.option(
    "--route",
    "routes",
    multiple=True,
    metavar="PATTERN",
    help="Compare only requests whose route matches this glob ('GET /api/*'; repeatable).",
)
@click.option(
    "--alpha",
    type=click.FloatRange(0, 0.5, min_open=True),
    default=0.01,
    show_default=True,
    help="Significance level after correction; the intervals are 1-alpha.",
)
@click.option(
    "--min-shift-ms",
    type=click.FloatRange(0),
    default=1.0,
    show_default=True,
    help="Shifts smaller than this are unchanged, however significant.",
)
@click.option(
    "--min-shift-pct",
    type=click.FloatRange(0),
    default=5.0,
    show_default=True,
    help="Nor shifts under this percentage of the layer's baseline median.",
)
@click.option(
    "--min-route-traces",
    type=click.IntRange(min=2),
    default=10,
    show_default=True,
    metavar="N",
    help="Compare a route only with at least N requests on each side.",
)
@click.option(
    "--fail-on-regression", is_flag=True, help="Exit 1 when something regressed (for CI pipelines)."
)
@click.option(
    "--rules", "rules_path", metavar="FILE", help="YAML file of extra layer rules (docs/analyzer.md)."
)
@click.option("--no-skew", is_flag=True, help="Do not adjust clock skew between hosts.")
@click.option(
    "--jobs",
    "-j",
    type=click.Choice(["auto", "1", "2"]),
    default="auto",
    show_default=True,
    help="Read the two sides at once (auto: with two cores and 32 MiB of input).",
)
@click.option(
    "--warnings",
    "max_warnings",
    type=click.IntRange(min=0),
    default=MAX_WARNINGS_SHOWN,
    show_default=True,
    metavar="N",
    help="Warnings printed per side on stderr before the rest are counted.",
)
def diff_command(
    sides: tuple[str, ...],
    baseline: tuple[str, ...],
    candidate: tuple[str, ...],
    fmt: str | None,
    output: str | None,
    routes: tuple[str, ...],
    alpha: float,
    min_shift_ms: float,
    min_shift_pct: float,
    min_route_traces: int,
    fail_on_regression: bool,
    rules_path: str | None,
    no_skew: bool,
    jobs: str,
    max_warnings: int,
) -> None:
    """Which layer of the request path got slower (or broke more) between two captures?

    BASELINE and CANDIDATE are trace files in any format `tracekit analyze` reads, directories of them,
    or saved `tracekit analyze --format json` reports; -b/-c add more inputs to a side. Per layer,
    overall and per route: both sides' p50/p95/p99, the typical shift per request (Hodges-Lehmann, with
    a 1-alpha interval), a Mann-Whitney U p-value corrected over every comparison (Benjamini-Hochberg),
    and a verdict: regressed, improved or unchanged. Then the failures per layer and kind, and the
    failure reasons new in the candidate. docs/diff.md explains the statistics.

    Exit status: 0 whatever the verdict (1 with --fail-on-regression when something regressed), 2 when
    an input is unusable or an argument is wrong.
    """
    result = run_command(
        "diff",
        lambda: _run(
            sides,
            baseline,
            candidate,
            fmt,
            output,
            ReadOptions(rules_path=rules_path, adjust_skew=not no_skew, routes=routes),
            DiffOptions(
                alpha=alpha,
                min_shift_ms=min_shift_ms,
                min_shift_ratio=min_shift_pct / 100.0,
                min_route_traces=min_route_traces,
            ),
            jobs,
            max_warnings,
        ),
        output=output,
    )
    if fail_on_regression and result["verdict"] == "regressed":
        sys.exit(1)


def _side_paths(
    sides: tuple[str, ...], baseline: tuple[str, ...], candidate: tuple[str, ...]
) -> tuple[list[str], list[str]]:
    if len(sides) not in (0, 2):
        raise TracekitError(
            f"give BASELINE and CANDIDATE (got {len(sides)} path(s)); more inputs per side go after -b/-c"
        )
    base = [*sides[:1], *baseline]
    cand = [*sides[1:], *candidate]
    if not base or not cand:
        raise TracekitError("give BASELINE and CANDIDATE: trace files, directories or saved reports")
    if (base + cand).count("-") > 1:
        raise TracekitError("stdin (-) can feed only one input")
    return base, cand


def _input_bytes(paths: Sequence[str]) -> int:
    total = 0
    for path in paths:
        with contextlib.suppress(OSError):
            total += os.path.getsize(path)
    return total


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _run(
    sides: tuple[str, ...],
    baseline: tuple[str, ...],
    candidate: tuple[str, ...],
    fmt: str | None,
    output: str | None,
    read: ReadOptions,
    options: DiffOptions,
    jobs: str,
    max_warnings: int,
) -> dict[str, Any]:
    base_paths, cand_paths = _side_paths(sides, baseline, candidate)
    files = expand(base_paths) + expand(cand_paths)
    check_output_not_input(output, files)
    out_format = output_format(fmt, output)
    if output not in (None, "-"):
        prepare_output(output)  # a missing directory is created before any reading
    if read.rules_path is not None:
        from tracekit.analyze.rules import load_rules

        load_rules(read.rules_path)  # a bad rules file is one error, before any reading
    together = jobs == "2" or (jobs == "auto" and _cores() > 1 and _input_bytes(files) >= PARALLEL_BYTES)
    base, cand = _read_sides(base_paths, cand_paths, read, max_warnings, together)
    for side in (base, cand):
        _print_warnings(side, max_warnings)
    result = diff(base, cand, options)
    _write(result, out_format, output)
    return result


def _read_sides(
    base_paths: list[str], cand_paths: list[str], read: ReadOptions, max_warnings: int, together: bool
) -> tuple[Side, Side]:
    """Both sides; with ``together``, the baseline in a child process while this one reads the candidate."""
    if not together or "-" in base_paths:
        return (
            read_side("baseline", base_paths, read, max_warnings),
            read_side("candidate", cand_paths, read, max_warnings),
        )
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context(
        "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    )
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        future = pool.submit(_read_in_child, base_paths, read, max_warnings)
        cand = read_side("candidate", cand_paths, read, max_warnings)
        base = future.result()
    if isinstance(base, str):
        raise TracekitError(base)
    return base, cand


def _read_in_child(paths: list[str], read: ReadOptions, max_warnings: int) -> Side | str:
    """:func:`read_side` in a worker; an input error comes back as its one line (exceptions with
    custom constructors do not survive pickling)."""
    try:
        return read_side("baseline", paths, read, max_warnings)
    except TracekitError as exc:
        return str(exc)


def _print_warnings(side: Side, limit: int) -> None:
    for message in side.warnings:
        click.echo(f"warning: {message}", err=True)
    hidden = side.warning_count - len(side.warnings)
    if hidden > 0:
        click.echo(
            f"warning: {side.name}: ... and {hidden:,} more warning(s) not shown "
            f"({side.warning_count:,} in all; --warnings N shows more)",
            err=True,
        )


def _write(result: dict[str, Any], out_format: str, output: str | None) -> None:
    if out_format == "json":
        from tracekit.analyze.renderers.json import render_json

        text = render_json(result, indent=2)
    elif out_format == "html":
        from tracekit.diff.html import render_html

        text = render_html(result)
    elif output in (None, "-"):
        from rich.console import Console

        from tracekit.analyze.renderers.text import console_width
        from tracekit.diff.text import print_diff

        print_diff(result, Console(highlight=False, width=console_width(sys.stdout)))
        return
    else:
        from tracekit.diff.text import render_text

        text = render_text(result)
    with open_output(output) as out:
        out.write(text)

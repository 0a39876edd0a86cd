"""One side of a diff, read into per-trace layer figures: what each request spent per layer, its route,
and where it broke. Spans are never kept.

A side is one or more inputs, each a trace file in any format ``tracekit analyze`` reads (analysed here,
one trace at a time, with the analyzer's own :class:`~tracekit.analyze.api.Analysis`), a directory of
such files (its regular, non-hidden files, in name order), or a saved ``tracekit analyze --format json``
report, whose per-trace ``layers``, ``route`` and ``diagnosis`` are all a diff needs.

Memory: one float per layer with time and one route index per trace (about 80 bytes a trace), plus the
failure counters; the figures become numpy arrays when the side is complete.
"""

from __future__ import annotations

import fnmatch
import os
import re
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
from numpy.typing import NDArray

from tracekit.analyze.model import LAYERS
from tracekit.analyze.renderers.json import STREAM_HEAD
from tracekit.errors import TraceFormatError, TracekitError

WarningCallback = Callable[[str], None]

#: Distinct routes kept per side; the rest are counted under :data:`OTHER_ROUTE` (ids in URL paths).
MAX_ROUTES = 1000
OTHER_ROUTE = "(other routes)"
#: The route of a trace whose report names none (reports of older releases).
NO_ROUTE = "(no route)"
#: Distinct failure reasons kept per side (a reason quoting a request id would otherwise grow without end).
MAX_REASONS = 10_000

#: A saved analyzer report: a JSON object whose first key is ``traces`` or ``summary``. Trace formats
#: start otherwise (OTLP ``resourceSpans``/``batches``/``result``, Jaeger ``data``, Zipkin ``[``).
_REPORT_HEAD = re.compile(rb'^\s*\{\s*"(?:traces|summary)"\s*:')


@dataclass
class Side:
    """Per-trace figures of one side, as arrays aligned by trace."""

    name: str
    sources: list[str]
    #: Traces compared (those whose route matched ``--route``, when given).
    traces: int
    #: Traces read before the route filter.
    read: int
    #: Per layer with time in some trace: ms per trace (0 where the trace spent none there).
    layers: dict[str, NDArray[np.float64]]
    routes: list[str]
    #: Per trace: its index in :attr:`routes`.
    route_index: NDArray[np.int32]
    error_traces: int
    #: (failed layer, diagnosis kind) -> failed traces.
    failures: dict[tuple[str, str], int]
    #: Failure reason -> failed traces.
    reasons: dict[str, int]
    warnings: list[str] = field(default_factory=list)
    warning_count: int = 0

    def layer(self, name: str) -> NDArray[np.float64]:
        values = self.layers.get(name)
        return values if values is not None else np.zeros(self.traces)


class SideBuilder:
    """Fold trace results (the analyzer's per-trace report fields) into a :class:`Side`."""

    def __init__(self, name: str, routes: Sequence[str] = ()) -> None:
        self.name = name
        self.patterns = list(routes)
        self.count = 0
        self.read = 0
        self.values: dict[str, array[float]] = {}
        self.route_ids: dict[str, int] = {}
        self.route_index: array[int] = array("i")
        self.error_traces = 0
        self.failures: Counter[tuple[str, str]] = Counter()
        self.reasons: Counter[str] = Counter()

    def add(
        self,
        layers: Mapping[str, float],
        route: str,
        failed_layer: str | None = None,
        kind: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Count one trace: its ms per layer, its route, and where it broke (``failed_layer`` None: ok)."""
        self.read += 1
        if self.patterns and not any(fnmatch.fnmatchcase(route, p) for p in self.patterns):
            return
        index = self.count
        for layer, ms in layers.items():
            if not ms:
                continue
            values = self.values.get(layer)
            if values is None:
                values = self.values[layer] = array("d")
            if len(values) < index:  # the traces before this one spent no time in the layer
                values.extend(array("d", bytes(8 * (index - len(values)))))
            values.append(ms)
        route_id = self.route_ids.get(route)
        if route_id is None:
            if len(self.route_ids) >= MAX_ROUTES and route != OTHER_ROUTE:
                route = OTHER_ROUTE
            route_id = self.route_ids.setdefault(route, len(self.route_ids))
        self.route_index.append(route_id)
        self.count += 1
        if failed_layer is not None:
            self.error_traces += 1
            self.failures[(failed_layer, kind or "error")] += 1
            if reason and (reason in self.reasons or len(self.reasons) < MAX_REASONS):
                self.reasons[reason] += 1

    def add_report(self, report: Mapping[str, Any]) -> None:
        """Count one trace report (the analyzer's per-trace dict)."""
        diagnosis = report.get("diagnosis") or {}
        failed = diagnosis.get("failed_layer") if report.get("status") == "error" else None
        if report.get("status") == "error" and failed is None:
            failed = "unknown"
        self.add(
            report.get("layers") or {},
            report.get("route") or NO_ROUTE,
            failed,
            diagnosis.get("kind"),
            diagnosis.get("reason"),
        )

    def side(self, sources: list[str]) -> Side:
        """The finished side: arrays padded to one value per trace, layers in path order."""
        layers: dict[str, NDArray[np.float64]] = {}
        for layer in sorted(self.values, key=_layer_order):
            values = np.zeros(self.count, dtype=np.float64)
            got = np.frombuffer(self.values[layer], dtype=np.float64)
            values[: got.size] = got
            layers[layer] = values
        return Side(
            name=self.name,
            sources=sources,
            traces=self.count,
            read=self.read,
            layers=layers,
            routes=list(self.route_ids),
            route_index=np.frombuffer(self.route_index, dtype=np.int32).copy(),
            error_traces=self.error_traces,
            failures=dict(self.failures),
            reasons=dict(self.reasons),
        )


def _layer_order(layer: str) -> tuple[int, str]:
    return (LAYERS.index(layer), "") if layer in LAYERS else (len(LAYERS), layer)


def expand(paths: Iterable[str]) -> list[str]:
    """The input files of a side: each path as given, a directory as its regular non-hidden files.

    :raises TracekitError: a directory holds no file.
    """
    files: list[str] = []
    for path in paths:
        if path != "-" and os.path.isdir(path):
            inside = sorted(
                os.path.join(path, entry)
                for entry in os.listdir(path)
                if not entry.startswith(".") and os.path.isfile(os.path.join(path, entry))
            )
            if not inside:
                raise TracekitError(f"{path}: directory holds no trace file")
            files.extend(inside)
        else:
            files.append(path)
    return files


# --- saved reports --------------------------------------------------------------------------------


class _Diagnosis(msgspec.Struct):
    failed_layer: str | None = None
    kind: str | None = None
    reason: str | None = None


class _TraceRow(msgspec.Struct):
    layers: dict[str, float]
    status: str = "ok"
    route: str | None = None
    diagnosis: _Diagnosis | None = None


class _Summary(msgspec.Struct):
    traces: int = -1


class _Report(msgspec.Struct):
    traces: list[_TraceRow]
    summary: _Summary | None = None


def is_report(head: bytes) -> bool:
    """Do these first bytes start a saved ``tracekit analyze --format json`` report?"""
    return _REPORT_HEAD.match(head.removeprefix(b"\xef\xbb\xbf")) is not None


def read_report(data: bytes, name: str, builder: SideBuilder) -> None:
    """Fold a saved report's traces into ``builder``.

    :raises TraceFormatError: not a report, a field of the wrong type, or a report that holds only
        some of its traces (saved with ``--slowest``: a diff of a sample would mislead).
    """
    from tracekit.analyze.readers import error_text

    try:
        report = msgspec.json.decode(data, type=_Report)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
        raise TraceFormatError(f"analyzer report: {error_text(exc, data)}", path=name) from None
    if report.summary is not None and report.summary.traces > len(report.traces):
        raise TraceFormatError(
            f"analyzer report holds {len(report.traces):,} of its {report.summary.traces:,} traces "
            "(saved with --slowest?); save it with `tracekit analyze --format json` and no --slowest",
            path=name,
        )
    if not report.traces:
        raise TraceFormatError("analyzer report holds no trace", path=name)
    for row in report.traces:
        _add_row(builder, row)


def _add_row(builder: SideBuilder, row: _TraceRow) -> None:
    diag = row.diagnosis
    failed = None
    if row.status == "error":
        failed = (diag.failed_layer if diag else None) or "unknown"
    builder.add(
        row.layers,
        row.route or NO_ROUTE,
        failed,
        diag.kind if diag else None,
        diag.reason if diag else None,
    )


def is_streamed_report(head: bytes) -> bool:
    """A report as ``tracekit analyze --format json`` streams it: ``{"traces":[`` then one trace a line."""
    return head.startswith(STREAM_HEAD)


def read_streamed_report(lines: Iterable[tuple[int, bytes | None]], name: str, builder: SideBuilder) -> None:
    """Fold a streamed report one line (one trace) at a time: memory stays that of a trace, not of the
    file (a million spans' report is about 400 MB).

    The layout (``renderers/json.py``, ``stream_json``): ``{"traces":[`` and the first trace on line 1,
    each trace line ending in ``,``, the last in ``],``, then ``"summary":{...}}``.

    :raises TraceFormatError: a line that does not fit the layout or the schema (naming the line).
    """
    from tracekit.analyze.readers import error_text

    decode = msgspec.json.Decoder(_TraceRow).decode
    count = 0
    summary: _Summary | None = None
    done = False
    for lineno, raw in lines:
        if raw is None:
            raise TraceFormatError("analyzer report: line too long", path=name, line=lineno)
        line = raw.rstrip()
        if lineno == 1:
            line = line[len(STREAM_HEAD) :]
        if not line:
            continue
        try:
            if done:
                if not line.startswith(b'"summary":') or not line.endswith(b"}"):
                    raise TraceFormatError("analyzer report: text after the summary", path=name, line=lineno)
                summary = msgspec.json.decode(line[len(b'"summary":') : -1], type=_Summary)
                continue
            if line.endswith(b"],"):
                line, done = line[:-2], True
            elif line.endswith(b","):
                line = line[:-1]
            if line:
                _add_row(builder, decode(line))
                count += 1
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
            raise TraceFormatError(
                f"analyzer report: {error_text(exc, line)}", path=name, line=lineno
            ) from None
    if summary is None:
        raise TraceFormatError("analyzer report: truncated (no summary after the traces)", path=name)
    if summary.traces not in (-1, count):
        raise TraceFormatError(
            f"analyzer report holds {count:,} of its {summary.traces:,} traces (truncated?)", path=name
        )
    if not count:
        raise TraceFormatError("analyzer report holds no trace", path=name)


# --- reading a side -------------------------------------------------------------------------------


@dataclass
class ReadOptions:
    """How the traces of a side are analysed and selected."""

    rules_path: str | None = None
    adjust_skew: bool = True
    routes: tuple[str, ...] = ()


class _Warnings:
    """The first ``limit`` warnings kept (for the CLI to print), the rest counted."""

    def __init__(self, prefix: str, limit: int) -> None:
        self.prefix = prefix
        self.limit = limit
        self.shown: list[str] = []
        self.count = 0

    def __call__(self, message: str) -> None:
        self.count += 1
        if len(self.shown) < self.limit:
            self.shown.append(f"{self.prefix}: {message}")


def read_side(name: str, paths: Sequence[str], options: ReadOptions, warning_limit: int = 10) -> Side:
    """Read and analyse every input of one side (see the module docstring).

    An input with nothing usable is a warning while other inputs of the side have traces, and the
    error when none has; an input that fails after some of its traces were counted (a truncated
    report, a read error) is an error.

    :raises TracekitError: no trace on this side (one line naming the first unusable input).
    """
    from tracekit.analyze.api import Analysis
    from tracekit.analyze.processors import Options
    from tracekit.analyze.readers import read_traces
    from tracekit.analyze.readers.common import open_source
    from tracekit.analyze.rules import load_rules

    files = expand(paths)
    warn = _Warnings(name, warning_limit)
    analysis = Analysis(Options(rules=load_rules(options.rules_path), adjust_skew=options.adjust_skew))
    builder = SideBuilder(name, options.routes)
    errors: list[str] = []
    for path in files:
        before = builder.read
        try:
            with open_source(path) as src:
                if is_streamed_report(src.head):
                    read_streamed_report(src.iter_lines(), src.name, builder)
                    continue
                if is_report(src.head):
                    read_report(src.read_all(), src.name, builder)
                    continue
                # The opened stream again holds the bytes detection looked at (stdin included).
                for trace in read_traces(src.stream, on_warning=warn, name=src.name):
                    report = analysis.analyse(trace)
                    if report is not None:
                        builder.add_report(report)
        except TraceFormatError as exc:
            if builder.read > before:
                # Part of the input is counted already: a side cut short would compare a fragment.
                raise TracekitError(f"{name}: {exc}") from None
            errors.append(str(exc))
            if len(files) > 1:
                warn(str(exc))
    if builder.read == 0:
        more = f" (and {len(errors) - 1} more unusable input(s))" if len(errors) > 1 else ""
        raise TracekitError(f"{name}: {errors[0]}{more}" if errors else f"{name}: no traces found")
    side = builder.side(files)
    side.warnings, side.warning_count = warn.shown, warn.count
    return side

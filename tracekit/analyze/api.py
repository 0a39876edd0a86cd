"""The analyzer's library entry points: trace files (or Trace objects) in, the JSON contract out.

``analyze_paths(paths)`` and ``analyze_traces(traces)`` return the docs/design.md JSON contract as a dict
(``{"summary": ..., "traces": [...]}``, key names fixed; extra keys are documented in
docs/analyzer.md). :class:`Analysis` is the streaming core both use: it analyses one trace at a time,
folds it into the aggregates and keeps only the trace reports asked for (all, the slowest N, failed
ones), so the CLI can write a million spans' worth of reports without holding them.
"""

from __future__ import annotations

import functools
import heapq
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tracekit.analyze.model import LAYERS, SpanKind, Trace
from tracekit.analyze.processors import Options, Processor, default_processors
from tracekit.analyze.processors.aggregates import Aggregator
from tracekit.analyze.processors.network import call_facts
from tracekit.analyze.processors.timeline import KIND_NAMES, STATUS_NAMES, build_timeline, hops_as_dicts
from tracekit.analyze.rules import load_rules
from tracekit.analyze.tree import SpanTree, build_span_tree
from tracekit.errors import TracekitError

WarningCallback = Callable[[str], None]

__all__ = ["Analysis", "Selection", "analyze_paths", "analyze_traces", "choose", "normalize_trace_id"]


def normalize_trace_id(value: str) -> str:
    """A user-given trace id as the model spells it: lowercase hex, left-padded to 32 characters.

    The readers' own rule (``readers.common.normalize_id``), so every id the output prints can be
    given back: hex in any case (``0x`` allowed, short ids zero-padded, a 64-character id whose high
    half is zero), and ids that are not hex (``trace-123`` in synthetic Jaeger files) by the same
    stable hash the reader gave them.

    :raises TracekitError: empty, or more hex digits than a trace id has.
    """
    from tracekit.analyze.readers.common import BadId, normalize_id

    text = value.strip()
    if text[:2].lower() == "0x":
        text = text[2:]
    try:
        return normalize_id(text, 16, base64_ok=False, free_text_ok=True)
    except BadId as exc:
        raise TracekitError(f"--trace-id {value!r}: not a trace id ({exc})") from None


def trace_route(tree: SpanTree) -> str:
    """The request's route: the first ``http.route`` on the path (with the method), else method + path."""
    root = tree.root
    assert root is not None
    for node in tree.waterfall(root):
        attrs = node.span.attributes
        route = attrs.get("http.route")
        if route:
            method = attrs.get("http.request.method") or attrs.get("http.method")
            return f"{method} {route}" if method else str(route)
    attrs = root.span.attributes
    method = attrs.get("http.request.method") or attrs.get("http.method")
    path = attrs.get("url.path") or attrs.get("http.target")
    if path is None:
        url = attrs.get("url.full") or attrs.get("http.url")
        if url:
            rest = str(url).split("://", 1)[-1]
            path = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    if path:
        path = str(path).split("?", 1)[0]
        return f"{method} {path}" if method else path
    return root.span.name


@dataclass
class Selection:
    """The candidates :meth:`Analysis.add` keeps for ``--slowest N`` and the failed traces shown.

    ``slowest``: ``(duration_ms, negated place, report)``, at most N; ``failed``: ``(place, report)``
    in read order, the first ``failed + N`` failed traces. Selections of parallel workers merge with
    :func:`choose` into what one process would have kept.
    """

    slowest: list[tuple[float, Any, dict[str, Any]]]
    failed: list[tuple[Any, dict[str, Any]]]


def choose(parts: Iterable[Selection], slowest: int, failed: int) -> list[dict[str, Any]]:
    """The slowest ``slowest`` reports (slowest first, the earlier trace on a tie), then the first
    ``failed`` failed reports in read order that are not among them."""
    parts = list(parts)
    candidates = [item for part in parts for item in part.slowest]
    top = heapq.nlargest(slowest, candidates, key=lambda item: (item[0], item[1]))
    chosen = [item[2] for item in top]
    seen = {id(r) for r in chosen}
    failures = sorted((item for part in parts for item in part.failed), key=lambda item: item[0])
    chosen.extend([r for _, r in failures if id(r) not in seen][:failed])
    return chosen


def _negated(place: Any) -> Any:
    """A sort key that orders places backwards (a count, or a tuple of counts)."""
    return -place if isinstance(place, int) else tuple(-x for x in place)


class Analysis:
    """Analyse traces one at a time; keep the aggregates and the trace reports asked for.

    Which trace reports :meth:`report` returns: all of them in read order, or, with ``slowest`` or
    ``failed``, the ``slowest`` N then up to ``failed`` failed traces not already among them (see
    :func:`choose`).
    """

    def __init__(
        self,
        options: Options | None = None,
        *,
        trace_ids: Iterable[str] | None = None,
        include_spans: bool = False,
        slowest: int | None = None,
        failed: int = 0,
        on_warning: WarningCallback | None = None,
    ) -> None:
        self.options = options or Options()
        self.processors: list[Processor] = default_processors(self.options)
        self.trace_ids = {normalize_trace_id(t) for t in trace_ids} if trace_ids else None
        self.include_spans = include_spans
        self.slowest = slowest
        self.failed_wanted = failed
        self.on_warning = on_warning
        self.aggregator = Aggregator()
        self.all: list[dict[str, Any]] = []
        self._heap: list[tuple[float, Any, dict[str, Any]]] = []
        self._failed: list[tuple[Any, dict[str, Any]]] = []
        self._seq = 0
        self.found_ids: set[str] = set()

    def analyse(self, trace: Trace) -> dict[str, Any] | None:
        """Analyse one trace, count it, and return its report (None when filtered out or empty).

        The report's ``hops`` are :class:`~tracekit.analyze.processors.timeline.Hop` structs (they
        encode to the same JSON); :meth:`kept` and :meth:`report` turn them into dicts.
        """
        return self._analyse(trace, None)

    def _analyse(self, trace: Trace, place: Any) -> dict[str, Any] | None:
        """:meth:`analyse`; with a ``place`` (:meth:`add` keeping only some reports), the hops are
        built only for a report that will be kept: the other reports are dropped, and the hops are
        about a tenth of the analysis."""
        if self.trace_ids is not None and trace.trace_id not in self.trace_ids:
            return None
        tree = build_span_tree(trace)
        root = tree.root
        if root is None:
            if self.on_warning is not None:
                self.on_warning(f"trace {trace.trace_id}: no spans, skipped")
            return None
        for step in self.processors:
            if (
                step is build_timeline
                and place is not None
                and not self._keeps((root.end - root.start) / 1e6, _failed(tree), place)
            ):
                continue
            tree = step(tree, self.options)
        if self.trace_ids is not None:
            self.found_ids.add(trace.trace_id)
        report = self._trace_report(tree)
        self.aggregator.add(tree, report["route"], report["status"] == "error")
        tree.dispose()
        if self.on_warning is not None:
            for warning in report["warnings"]:
                self.on_warning(f"trace {trace.trace_id}: {warning}")
        return report

    def add(self, trace: Trace) -> dict[str, Any] | None:
        """:meth:`analyse` a trace and keep its report if it is wanted (when only some are kept, a
        report that is not kept has no hops)."""
        if self.slowest is None and not self.failed_wanted:
            report = self.analyse(trace)
            if report is not None:
                self.all.append(report)
            return report
        # The trace's place in read order: a count in one process; in a partitioned run the place
        # of its first span in the input, which sorts the same way.
        place: Any = self._seq + 1 if trace.order is None else trace.order
        report = self._analyse(trace, place)
        if report is None:
            return None
        self._seq += 1
        if self.slowest:
            # On equal durations the earlier trace wins (the larger negated place).
            item = (report["duration_ms"], _negated(place), report)
            if len(self._heap) < self.slowest:
                heapq.heappush(self._heap, item)
            elif item > self._heap[0]:
                heapq.heapreplace(self._heap, item)
        # The failed traces shown are the first ones in read order that are not among the slowest:
        # keeping the first (failed + slowest) is enough, since at most ``slowest`` of them are.
        if report["status"] == "error" and len(self._failed) < self.failed_wanted + (self.slowest or 0):
            self._failed.append((place, report))
        return report

    def _keeps(self, duration_ms: float, failed: bool, place: Any) -> bool:
        """Whether :meth:`add` will keep a report with this duration, outcome and place."""
        if self.slowest and (
            len(self._heap) < self.slowest or (duration_ms, _negated(place)) > self._heap[0][:2]
        ):
            return True
        return failed and len(self._failed) < self.failed_wanted + (self.slowest or 0)

    def selection(self) -> Selection:
        """What :meth:`add` kept for the slowest and failed traces, to merge with other workers'."""
        return Selection(list(self._heap), list(self._failed))

    def kept(self) -> list[dict[str, Any]]:
        """The trace reports kept: all in read order, or the slowest (slowest first) then the first
        failed ones (in read order) that are not among them."""
        if self.slowest is None and not self.failed_wanted:
            chosen = self.all
        else:
            chosen = choose([self.selection()], self.slowest or 0, self.failed_wanted)
        for report in chosen:
            report["hops"] = hops_as_dicts(report["hops"])
        return chosen

    def summary(self) -> dict[str, Any]:
        return self.aggregator.summary()

    def report(self) -> dict[str, Any]:
        """The JSON contract: ``{"summary": ..., "traces": [...]}``."""
        return {"summary": self.summary(), "traces": self.kept()}

    def _trace_report(self, tree: SpanTree) -> dict[str, Any]:
        root = tree.root
        assert root is not None
        duration_ns = root.end - root.start
        attribution = tree.attribution
        layers = {layer: attribution[layer] / 1e6 for layer in LAYERS if layer in attribution}
        failed = _failed(tree)
        start = root.span.start_ns
        report: dict[str, Any] = {
            "trace_id": tree.trace_id,
            "duration_ms": duration_ns / 1e6,
            "status": "error" if failed else "ok",
            "layers": layers,
            "hops": tree.hops,
            "diagnosis": tree.diagnosis,
            "warnings": tree.warnings,
            "start_time": _iso_second(start // 1_000_000_000) + f".{start % 1_000_000_000 // 1000:06d}Z",
            "root": {"service": root.span.service, "name": root.span.name, "span_id": root.span.span_id},
            "route": trace_route(tree),
            "span_count": len(tree.trace.spans),
            "work_ms": tree.work / 1e6,
            "outside_root": {"spans": tree.outside[0], "ms": tree.outside[1] / 1e6},
            "error_spans": tree.error_spans,
            "source": tree.trace.source,
        }
        if self.include_spans:
            report["spans"] = spans_of(tree)
        return report


def _failed(tree: SpanTree) -> bool:
    return tree.diagnosis["failed_layer"] is not None


@functools.lru_cache(maxsize=4096)
def _iso_second(seconds: int) -> str:
    """ISO 8601 UTC of a whole second (cached: traces of one run share seconds)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def spans_of(tree: SpanTree) -> list[dict[str, Any]]:
    """Every span of the trace (orphans and other roots included) for the HTML report."""
    root = tree.root
    assert root is not None
    t0 = root.start
    out: list[dict[str, Any]] = []
    append, status_name = out.append, STATUS_NAMES.get
    calls = (SpanKind.CLIENT, SpanKind.PRODUCER)
    for node in tree.nodes:
        span = node.span
        kind = span.kind
        start = node.start
        events = span.events
        row = {
            "span_id": span.span_id,
            "parent_id": span.parent_id,
            "name": span.name,
            "service": span.service,
            "layer": node.hop_layer,
            "span_layer": node.layer,
            "kind": KIND_NAMES[kind] if 0 <= kind < 6 else "unspecified",
            "start_ms": (start - t0) / 1e6,
            "duration_ms": (node.end - start) / 1e6,
            "self_ms": node.self_ns / 1e6,
            "status": status_name(span.status, "unset"),
            "status_message": span.status_message,
            "critical": node.critical,
            "failed": node.failed,
            "attributes": span.attributes,
            "resource": span.resource,
            # Most spans have no events: skip building an empty list comprehension for them.
            "events": [
                {"name": e.name, "time_ms": (e.time_ns - span.start_ns + start - t0) / 1e6}
                | ({"attributes": e.attributes} if e.attributes else {})
                for e in events
            ]
            if events
            else [],
        }
        if kind in calls:
            row.update(call_facts(node))
        append(row)
    return out


def read_paths(
    paths: Iterable[str | os.PathLike[str]], on_warning: WarningCallback | None = None
) -> Iterator[Trace]:
    """Every trace of every path, in order (readers detect each file's format)."""
    from tracekit.analyze.readers import read_traces

    for path in paths:
        yield from read_traces(path, on_warning=on_warning)


def analyze_traces(
    traces: Iterable[Trace],
    *,
    rules_path: str | os.PathLike[str] | None = None,
    trace_ids: Iterable[str] | None = None,
    include_spans: bool = False,
    slowest: int | None = None,
    on_warning: WarningCallback | None = None,
    options: Options | None = None,
) -> dict[str, Any]:
    """Analyse Trace objects; return the JSON contract dict (see the module docstring).

    :param slowest: keep only the N slowest traces' reports (the summary still counts every trace).
    :raises tracekit.errors.RulesError: the rules file is invalid.
    """
    if options is None:
        options = Options(rules=load_rules(rules_path))
    analysis = Analysis(
        options, trace_ids=trace_ids, include_spans=include_spans, slowest=slowest, on_warning=on_warning
    )
    for trace in traces:
        analysis.add(trace)
    return analysis.report()


def analyze_paths(
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    rules_path: str | os.PathLike[str] | None = None,
    trace_ids: Iterable[str] | None = None,
    include_spans: bool = False,
    slowest: int | None = None,
    on_warning: WarningCallback | None = None,
) -> dict[str, Any]:
    """Read trace files (any supported format, ``.gz``, ``"-"``) and analyse them.

    :raises tracekit.errors.TraceFormatError: a file holds nothing usable (one line naming it).
    :raises tracekit.errors.RulesError: the rules file is invalid.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    options = Options(rules=load_rules(rules_path))
    return analyze_traces(
        read_paths(paths, on_warning),
        trace_ids=trace_ids,
        include_spans=include_spans,
        slowest=slowest,
        on_warning=on_warning,
        options=options,
    )

"""The self-contained HTML report: one file that opens offline and shows where the time went.

``render_html(report)`` takes the analyzer's JSON contract (``analyze_paths(..., include_spans=True)``)
and returns one HTML page with the CSS, the JavaScript and the data inlined. Nothing is fetched: the
page is meant to be mailed, attached to a ticket, or opened from a CI artifact years later.

The page never receives every trace. Python does the aggregation here (flow diagram, per-layer
breakdown, failure groups, latency buckets) and embeds the aggregates plus a sample of at most
``MAX_SAMPLES`` waterfalls (the slowest, one per failure group then more failed ones, the typical ones
around the median). That keeps a 10,000-trace report small and quick to open, and keeps the browser
from drawing what nobody can read anyway.

Python never holds every trace either: :class:`ViewBuilder` folds one trace report at a time into the
aggregates and a compact record per trace (about 100 bytes), and drops its spans. The sampled traces
are chosen from those records at the end; ``tracekit analyze -o x.html`` then reads the input a second
time to analyse just those (docs/report.md, "Decisions"), so memory does not grow with the file.

The embedded JSON escapes ``<``, ``>``, ``&`` and the two JavaScript line separators, so a span
attribute holding ``</script>`` or ``<!--`` cannot end the data block early (pyinstrument's HTML
renderer inlines its JSON unescaped; we close that gap).
"""

from __future__ import annotations

import bisect
import heapq
import math
import re
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import resources
from typing import Any, cast

import msgspec

from tracekit import __version__
from tracekit.analyze.model import LAYERS
from tracekit.analyze.processors import aggregates
from tracekit.attributes import (
    BACKEND_SERVICE_NAME,
    K8S_CONTAINER_NAME,
    K8S_DAEMONSET_NAME,
    K8S_DEPLOYMENT_NAME,
    K8S_NAMESPACE_NAME,
    K8S_NODE_NAME,
    K8S_POD_NAME,
    K8S_STATEFULSET_NAME,
)

#: Most waterfalls embedded in one page; the rest of the traces only count in the aggregates.
MAX_SAMPLES = 50
#: Slowest traces sampled, then failed ones, then the ones around the median ("typical").
SLOWEST_SAMPLES = 10
FAILED_SAMPLES = 25
TYPICAL_SAMPLES = 5
#: Spans drawn per waterfall; a runaway trace with 50,000 spans keeps its first ones and says so.
MAX_SPANS_PER_TRACE = 400
#: Attribute values longer than this are cut (a stack trace or an SQL dump is not a chart label).
MAX_VALUE_CHARS = 2000
#: Pod replicas of one workload drawn one by one in the flow diagram; the others share one box.
MAX_PODS_SHOWN = 3
#: Example trace ids kept per failure group.
FAILURE_EXAMPLES = 5

_RESOURCES = "tracekit.analyze.renderers.html_resources"
_PLACEHOLDER = re.compile(r"\{\{(TITLE|CSS|JS|DATA)\}\}")
# Characters that may not appear raw inside <script>: "<" starts "</script>" and "<!--", the two
# separators end a JavaScript string literal in older engines. JSON parses the \u escapes back.
_SCRIPT_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def render_html(report: Mapping[str, Any], *, title: str = "tracekit report") -> str:
    """Return the whole report page for ``report`` (the analyzer's JSON contract, spans included)."""
    return render_view(build_view(report), title=title)


def render_view(view: dict[str, Any], *, title: str = "tracekit report") -> str:
    """The page for a view from :func:`build_view` or :meth:`ViewBuilder.view` (the CLI's streaming path)."""
    view["meta"]["title"] = title
    data = embed_json(view)
    parts = {
        "TITLE": _html_escape(title),
        "CSS": _resource("app.css"),
        "JS": _resource("app.js"),
        "DATA": data,
    }
    # One pass, so text inside the data that looks like a placeholder is never substituted.
    return _PLACEHOLDER.sub(lambda m: parts[m.group(1)], _resource("template.html"))


def embed_json(value: Any) -> str:
    """JSON for a ``<script type="application/json">`` block: no byte can close the element."""
    return msgspec.json.encode(value).decode("utf-8").translate(_SCRIPT_ESCAPES)


def _resource(name: str) -> str:
    text = resources.files(_RESOURCES).joinpath(name).read_text(encoding="utf-8")
    if name.endswith((".js", ".css")) and "</" in text.replace("<\\/", ""):
        # A literal "</" in the inlined code could close its element; keep app.js/app.css free of it.
        raise RuntimeError(f"html resource {name} contains '</'; write '<\\/' instead")
    return text


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


# --- statistics -----------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The processors' percentile (``q`` in 0..100 here) of already *sorted* values; None if empty."""
    if not values:
        return None
    # The processors' function takes a list; arrays and lists index the same way, so no copy is made.
    return float(aggregates.percentile(cast("list[float]", values), q / 100.0))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


# --- the view the page draws -----------------------------------------------------------------------


def build_view(report: Mapping[str, Any]) -> dict[str, Any]:
    """Reduce the analyzer report to what the page draws: aggregates and a sample of traces.

    The traces go through the same :class:`ViewBuilder` the CLI streams them into, so a report held
    in memory and a file streamed by ``tracekit analyze -o x.html`` give the same page.
    """
    traces: list[Mapping[str, Any]] = list(report.get("traces") or [])
    builder = ViewBuilder()
    for trace in traces:
        builder.add(trace)
    assert builder.flow is not None  # a ViewBuilder builds the flow diagram unless told not to
    if builder.flow.ambiguous():
        builder.refold_flow(traces)
    by_id = {t.get("trace_id"): t for t in traces}
    chosen = builder.select_samples(same=lambda i, j: traces[i] == traces[j])
    return builder.view(
        report.get("summary") or {}, report.get("warnings") or (), [(by_id[tid], why) for tid, why in chosen]
    )


class _TraceIds:
    """Trace ids in read order, 16 bytes each when they are the usual 32 lowercase hex digits."""

    __slots__ = ("_other", "_packed")

    def __init__(self) -> None:
        self._packed = bytearray()
        self._other: dict[int, Any] = {}

    def append(self, trace_id: Any) -> None:
        if isinstance(trace_id, str) and len(trace_id) == 32:
            try:
                raw = bytes.fromhex(trace_id)
            except ValueError:
                raw = b""
            if raw.hex() == trace_id:
                self._packed += raw
                return
        self._other[len(self._packed) // 16] = trace_id
        self._packed += bytes(16)

    def __getitem__(self, index: int) -> Any:
        if index in self._other:
            return self._other[index]
        return self._packed[16 * index : 16 * index + 16].hex()


class _FailureGroup:
    __slots__ = ("durations", "examples", "reason")

    def __init__(self, reason: Any) -> None:
        self.reason = reason
        self.durations = array("d")
        self.examples: list[Any] = []


class ViewBuilder:
    """What the page draws from *every* trace, folded in one trace report at a time.

    The page needs aggregates over all traces but the spans of only ``MAX_SAMPLES`` of them, so a
    trace report is folded in (:meth:`add`) and then dropped: what stays is a compact record per trace
    (duration, status, per-layer ms and trace id, about 100 bytes in arrays, plus 8 bytes per failed
    trace), the flow diagram's per-node/per-edge latencies (8 bytes per call) and the warning counts.
    :meth:`select_samples` then names the traces whose full reports :meth:`view` needs; the caller
    fetches them (the CLI reads the input a second time) and hands them to :meth:`view`.

    Every number is computed from the same values in the same order as a pass over a list of full
    reports would, so the page is byte-identical to the all-in-memory one.
    """

    def __init__(self, *, flow: bool = True) -> None:
        self.count = 0
        self.span_count = 0
        self.error_count = 0
        self.durations = array("d")
        self.errors = bytearray()
        #: ``len(LAYERS)`` values per trace: the ms each layer took (0.0 when absent).
        self.layer_ms = array("d")
        self.ids = _TraceIds()
        #: Indices of the failed traces and the id of their (failed layer, reason) sampling group.
        self.failed = array("q")
        self.failed_group = array("q")
        self._group_ids: dict[tuple[Any, Any], int] = {}
        self.groups: dict[tuple[Any, Any], _FailureGroup] = {}
        self.warning_counts: Counter[Any] = Counter()
        self.flow = FlowBuilder() if flow else None
        self._sorted: array[float] | None = None

    def add(self, trace: Mapping[str, Any]) -> None:
        """Fold one trace report (the JSON contract's trace dict, spans included) into the view."""
        index = self.count
        self.count += 1
        self._sorted = None
        duration = float(trace.get("duration_ms") or 0.0)
        failed = trace.get("status") == "error"
        self.durations.append(duration)
        self.errors.append(failed)
        layers = trace.get("layers") or {}
        self.layer_ms.extend([float(layers.get(layer) or 0.0) for layer in LAYERS])
        self.ids.append(trace.get("trace_id"))
        self.span_count += len(trace.get("spans") or ())
        diagnosis = trace.get("diagnosis") or {}
        if failed:
            self.error_count += 1
            self.failed.append(index)
            key = (diagnosis.get("failed_layer"), diagnosis.get("reason"))
            self.failed_group.append(self._group_ids.setdefault(key, len(self._group_ids)))
        if failed or diagnosis.get("failed_layer"):
            layer = diagnosis.get("failed_layer") or "unknown"
            # The diagnosis "kind" (db-error, no-endpoints, ...) groups; the reason text names spans.
            kind = diagnosis.get("kind") or diagnosis.get("reason") or "error"
            group = self.groups.get((layer, kind))
            if group is None:
                group = self.groups[(layer, kind)] = _FailureGroup(diagnosis.get("reason") or kind)
            group.durations.append(float(trace.get("duration_ms") or 0))
            if len(group.examples) < FAILURE_EXAMPLES:
                group.examples.append(trace.get("trace_id"))
        self.warning_counts.update(trace.get("warnings") or ())
        if self.flow is not None:
            self.flow.add(trace)

    def refold_flow(self, traces: Iterable[Mapping[str, Any]]) -> None:
        """Redo the flow diagram with the replica folding now known (see :meth:`FlowBuilder.ambiguous`)."""
        assert self.flow is not None
        flow = FlowBuilder(self.flow.fold())
        for trace in traces:
            flow.add(trace)
        self.flow = flow

    # --- sampling -----------------------------------------------------------------------------

    def select_samples(self, same: Callable[[int, int], bool] | None = None) -> list[tuple[Any, list[str]]]:
        """Trace ids worth a waterfall (at most MAX_SAMPLES), each with why it was picked.

        ``same(i, j)`` tells whether the i-th and j-th traces' reports are equal (it is only asked
        about failed traces sharing a trace id): an equal copy of a failed trace does not take a
        second "failed" slot. Without it, copies count as different traces.
        """
        why: dict[Any, list[str]] = defaultdict(list)
        order: list[Any] = []
        ids = self.ids

        def take(index: int, reason: str) -> None:
            tid = ids[index]
            if tid not in why:
                if len(order) >= MAX_SAMPLES:
                    return
                order.append(tid)
            if reason not in why[tid]:
                why[tid].append(reason)

        n = self.count
        if n <= MAX_SAMPLES:
            for i in range(n):
                take(i, "sampled")
        for i in self._slowest():
            take(i, "slowest")
        for i in self._failed_pick(same)[:FAILED_SAMPLES]:
            take(i, "failed")
        for i in self._typical():
            take(i, "typical")
        # Small inputs embed every trace (already taken above; they keep their tags); larger ones fill
        # the remaining slots with the first traces read.
        for i in range(n):
            if len(order) >= MAX_SAMPLES:
                break
            take(i, "sampled")
        return [(tid, [w for w in why[tid] if w != "sampled"] or ["sampled"]) for tid in order]

    def sample_candidates(self) -> tuple[set[Any], set[Any]]:
        """(ids :meth:`select_samples` may pick whatever ``same`` answers, failed ids seen twice or more).

        The CLI fetches the full reports of the first set in its second read; for ids in the second
        set it keeps every copy, to answer ``same``.
        """
        failed_ids = Counter(self.ids[i] for i in self.failed)
        repeated = {tid for tid, n in failed_ids.items() if n > 1}
        copies = sum(failed_ids[tid] for tid in repeated)
        picks = self._slowest() + self._failed_pick(None)[: FAILED_SAMPLES + copies] + self._typical()
        wanted = {self.ids[i] for i in picks}
        first: set[Any] = set()
        for i in range(self.count):
            if len(first) >= MAX_SAMPLES:
                break
            first.add(self.ids[i])
        return wanted | first, repeated

    def _slowest(self) -> list[int]:
        few = max(1, min(SLOWEST_SAMPLES, self.count // 10))
        # heapq.nlargest is documented equal to sorted(..., reverse=True)[:few], ties in read order.
        return heapq.nlargest(few, range(self.count), key=self.durations.__getitem__)

    def _failed_pick(self, same: Callable[[int, int], bool] | None) -> list[int]:
        """Failed traces, slowest first, one per (failed layer, reason) group ahead of the rest."""
        durations = self.durations
        positions = sorted(range(len(self.failed)), key=lambda p: durations[self.failed[p]], reverse=True)
        seen: set[int] = set()
        firsts: list[int] = []
        for p in positions:
            if self.failed_group[p] not in seen:
                seen.add(self.failed_group[p])
                firsts.append(p)
        picked = set(firsts)
        by_id: dict[Any, list[int]] = defaultdict(list)
        if same is not None:
            for p in firsts:
                by_id[self.ids[self.failed[p]]].append(self.failed[p])

        def is_copy(index: int) -> bool:
            return same is not None and any(same(index, j) for j in by_id.get(self.ids[index], ()))

        rest = [p for p in positions if p not in picked and not is_copy(self.failed[p])]
        return [self.failed[p] for p in firsts + rest]

    def _typical(self) -> list[int]:
        """The ok traces at the median of a stable sort by duration (ties keep read order)."""
        n = self.count
        if not n:
            return []
        ranked = self.sorted_durations()
        mid = (n - 1) // 2
        n_typical = max(1, min(TYPICAL_SAMPLES, n // 10))
        lo = max(0, mid - n_typical // 2)
        # Position p of the stable sort holds the k-th trace (read order) of duration ranked[p], where
        # k = p - first position of that duration.
        wanted = [
            (ranked[p], p - bisect.bisect_left(ranked, ranked[p])) for p in range(lo, min(lo + n_typical, n))
        ]
        values = {v for v, _ in wanted}
        seen: Counter[float] = Counter()
        found: dict[tuple[float, int], int] = {}
        for i, d in enumerate(self.durations):
            if d in values:
                found[(d, seen[d])] = i
                seen[d] += 1
        return [found[w] for w in wanted if not self.errors[found[w]]]

    # --- the view ------------------------------------------------------------------------------

    def sorted_durations(self) -> array[float]:
        if self._sorted is None:
            self._sorted = array("d", sorted(self.durations))
        return self._sorted

    def view(
        self,
        summary: Mapping[str, Any],
        warnings: Iterable[Any],
        samples: Iterable[tuple[Mapping[str, Any], list[str]]],
    ) -> dict[str, Any]:
        """The page's data: ``summary`` is the report's, ``samples`` the chosen full trace reports."""
        assert self.flow is not None
        durations = self.sorted_durations()
        resources: dict[str, tuple[int, dict[str, Any]]] = {}
        return {
            "meta": {
                "tracekit_version": __version__,
                "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            },
            "layers": list(LAYERS),
            "summary": {
                "traces": summary.get("traces", self.count),
                "spans": summary.get("spans", self.span_count),
                "error_traces": summary.get("error_traces", self.error_count),
                "layers": summary.get("layers") or {},
                "duration": {
                    "p50_ms": _round(percentile(durations, 50)),
                    "p95_ms": _round(percentile(durations, 95)),
                    "p99_ms": _round(percentile(durations, 99)),
                    "mean_ms": _round(sum(durations) / len(durations)) if durations else None,
                    **(summary.get("duration") or {}),
                    "max_ms": _round(durations[-1]) if durations else None,
                },
                "routes": summary.get("routes") or {},
            },
            "buckets": self._latency_buckets(durations),
            "histogram": self._histogram(),
            "flow": self.flow.result(),
            "failures": self._failure_groups(),
            "samples": [_sample(t, why, resources) for t, why in samples],
            # Spans of one process share their resource; each sampled span points into this table.
            "resources": [resource for _, resource in resources.values()],
            "warnings": [str(w) for w in warnings]
            + [f"{w} ({n} traces)" if n > 1 else w for w, n in self.warning_counts.most_common(20)],
        }

    def _latency_buckets(self, ranked: Sequence[float]) -> list[dict[str, Any]]:
        """Mean per-layer time of the traces in each latency band: where does the tail's time go?"""
        if not self.count:
            return []
        p50, p95, p99 = (percentile(ranked, q) or 0.0 for q in (50, 95, 99))
        bands = [
            ("typical (≤ p50)", -math.inf, p50),
            ("p50 \u2013 p95", p50, p95),
            ("p95 \u2013 p99", p95, p99),
            ("tail (> p99)", p99, math.inf),
        ]
        width = len(LAYERS)
        out = []
        for label, low, high in bands:
            count = 0
            sums = [0.0] * width
            for i, d in enumerate(self.durations):
                if low < d <= high:
                    count += 1
                    # Summed in read order, as the per-trace dicts were; adding 0.0 changes nothing.
                    for j, ms in enumerate(self.layer_ms[i * width : (i + 1) * width]):
                        if ms:
                            sums[j] += ms
            if not count:
                continue
            out.append(
                {
                    "label": label,
                    "count": count,
                    "layers": {layer: round(sums[j] / count, 3) for j, layer in enumerate(LAYERS) if sums[j]},
                }
            )
        return out

    def _histogram(self, bins: int = 40) -> dict[str, Any]:
        """End-to-end durations in ``bins`` equal bins (ok and error counted apart), for the overview."""
        if not self.count:
            return {"min_ms": 0, "max_ms": 0, "ok": [], "error": []}
        low, high = min(self.durations), max(self.durations)
        width = (high - low) / bins or 1.0
        ok, err = [0] * bins, [0] * bins
        for v, failed in zip(self.durations, self.errors, strict=True):
            i = min(int((v - low) / width), bins - 1)
            (err if failed else ok)[i] += 1
        return {"min_ms": round(low, 3), "max_ms": round(high, 3), "ok": ok, "error": err}

    def _failure_groups(self) -> list[dict[str, Any]]:
        """Failed traces grouped by (failed layer, reason kind), biggest group first."""
        ordered = sorted(
            self.groups.items(), key=lambda kv: (-len(kv[1].durations), _layer_index(kv[0][0]), kv[0][1])
        )
        return [
            {
                "layer": layer,
                "kind": kind,
                "reason": group.reason,
                "count": len(group.durations),
                "p50_ms": _round(percentile(sorted(group.durations), 50)),
                "examples": group.examples,
            }
            for (layer, kind), group in ordered
        ]


def _sample(
    trace: Mapping[str, Any], why: list[str], resources: dict[str, tuple[int, dict[str, Any]]]
) -> dict[str, Any]:
    spans = sorted(trace.get("spans") or (), key=lambda s: s.get("start_ms") or 0.0)
    dropped = max(0, len(spans) - MAX_SPANS_PER_TRACE)
    return {
        "trace_id": trace.get("trace_id"),
        "duration_ms": trace.get("duration_ms"),
        "status": trace.get("status"),
        "why": why,
        "layers": trace.get("layers") or {},
        "diagnosis": trace.get("diagnosis") or {},
        "warnings": list(trace.get("warnings") or ()),
        # Hops repeat what the spans say; they are only kept for reports made without spans.
        "hops": [] if spans else [_trim_hop(h) for h in trace.get("hops") or ()],
        "spans": [_trim_span(s, resources) for s in spans[:MAX_SPANS_PER_TRACE]],
        "dropped_spans": dropped,
        "root": trace.get("route") or _root_name(spans, trace),
        "start_time": trace.get("start_time"),
    }


def _root_name(spans: Sequence[Mapping[str, Any]], trace: Mapping[str, Any]) -> str:
    ids = {s.get("span_id") for s in spans}
    for s in spans:
        if s.get("parent_id") not in ids:
            return f"{s.get('service', '?')}: {s.get('name', '?')}"
    hops = trace.get("hops") or ()
    return f"{hops[0].get('service', '?')}: {hops[0].get('name', '?')}" if hops else "?"


def _trim_hop(hop: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: hop.get(k) for k in ("layer", "service", "name", "span_id", "start_ms", "duration_ms", "self_ms")
    }


def _trim_span(span: Mapping[str, Any], resources: dict[str, tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    out = {
        k: span.get(k)
        for k in (
            "span_id",
            "parent_id",
            "name",
            "service",
            "layer",
            "kind",
            "start_ms",
            "duration_ms",
            "status",
            "critical",
            "span_layer",
            "self_ms",
        )
        if k in span
    }
    out["attributes"] = _trim_attrs(span.get("attributes") or {})
    for key in ("start_ms", "duration_ms", "self_ms"):
        value = out.get(key)
        if isinstance(value, float):
            out[key] = round(value, 4)
    resource = _trim_attrs(span.get("resource") or {})
    key = msgspec.json.encode(sorted(resource.items(), key=lambda kv: kv[0])).decode()
    if key not in resources:
        resources[key] = (len(resources), resource)
    out["resource_ref"] = resources[key][0]
    events = span.get("events") or ()
    if events:
        out["events"] = [
            {
                "name": str(e.get("name", ""))[:200],
                "time_ms": e.get("time_ms"),
                **({"attributes": _trim_attrs(e["attributes"])} if e.get("attributes") else {}),
            }
            for e in events[:20]
        ]
    if span.get("status_message"):
        out["status_message"] = str(span["status_message"])[:MAX_VALUE_CHARS]
    return out


def _trim_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
            value = value[:MAX_VALUE_CHARS] + "…"
        elif isinstance(value, list | tuple):
            value = [v if isinstance(v, str | int | float | bool) else str(v) for v in value[:50]]
        elif not isinstance(value, str | int | float | bool) and value is not None:
            value = str(value)[:MAX_VALUE_CHARS]
        out[str(key)] = value
    return out


def _layer_index(layer: str | None) -> int:
    return LAYERS.index(layer) if layer in LAYERS else len(LAYERS)


def _get(span: Mapping[str, Any], key: str) -> Any:
    attrs = span.get("attributes") or {}
    value = attrs.get(key)
    if value is None:
        value = (span.get("resource") or {}).get(key)
    return value


# --- the request flow diagram ----------------------------------------------------------------------


class _Acc:
    """Counts, errors and latencies of one node or edge of the flow diagram (8 bytes per call)."""

    __slots__ = ("count", "errors", "latencies", "layers", "net")

    def __init__(self) -> None:
        self.count = 0
        self.errors = 0
        self.latencies = array("d")
        self.net = array("d")
        #: layer -> [spans, when the layer was first seen]: ties go to the first seen, as Counter's do.
        self.layers: dict[str, list[int]] = {}

    def add(self, latency: float, error: bool, net: float | None = None) -> None:
        self.count += 1
        self.errors += int(error)
        self.latencies.append(latency)
        if net is not None:
            self.net.append(net)

    def merge(self, other: _Acc) -> None:
        self.count += other.count
        self.errors += other.errors
        self.latencies.extend(other.latencies)
        self.net.extend(other.net)
        for layer, (n, first) in other.layers.items():
            mine = self.layers.setdefault(layer, [0, first])
            mine[0] += n
            mine[1] = min(mine[1], first)

    def top_layer(self) -> str | None:
        if not self.layers:
            return None
        return min(self.layers.items(), key=lambda kv: (-kv[1][0], kv[1][1]))[0]

    def stats(self) -> dict[str, Any]:
        latencies = sorted(self.latencies)
        net = sorted(self.net)
        out = {
            "count": self.count,
            "errors": self.errors,
            "p50_ms": _round(percentile(latencies, 50)),
            "p95_ms": _round(percentile(latencies, 95)),
        }
        if net:
            out["net_p50_ms"] = _round(percentile(net, 50))
            out["net_p95_ms"] = _round(percentile(net, 95))
        return out


def build_flow(traces: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The request flow diagram over ``traces`` (see :class:`FlowBuilder`)."""
    traces = list(traces)
    flow = FlowBuilder()
    for trace in traces:
        flow.add(trace)
    if flow.ambiguous():
        flow = FlowBuilder(flow.fold())
        for trace in traces:
            flow.add(trace)
    return flow.result()


#: A node as seen while streaming: its final id (a str), or, for a process or database node whose
#: pod may still be folded into "N more pods", a tuple holding the raw pod name.
_NodeKey = str | tuple[str, ...]
#: How many (service, attributes, resource) combinations FlowBuilder remembers the node of; past that it
#: forgets them all (spans with their own attribute dicts would otherwise keep every dict alive).
_NODE_CACHE_SIZE = 4096
#: "Not computed yet" (None is a value).
_UNSET: Any = object()


class FlowBuilder:
    """The request flow diagram, derived from parent->child span relations, one trace at a time.

    A node is one process (service + pod + container); a call between two nodes is an edge. A CLIENT
    span whose callee sent no span ends at a virtual node: the database (``db.system``), the Service
    that had no pod to send to, or an external peer. The ingress's upstream call is drawn through a
    virtual Kubernetes Service node, so the fan-out to the pod replicas shows as in the cluster.
    Edge latency is the caller's view of the call; ``net`` is the part the callee's server span does
    not cover (network, kube-proxy, queueing). Traces without spans fall back to their hops.

    Which replicas fold into one "N more pods" box is only known once every span was counted, so
    while streaming, nodes are keyed by their raw pod and :meth:`result` merges the folded ones (in
    first-seen order, so the page is the same as with the folding known up front). That is exact
    unless two spans of *different* raw nodes that fold into one box call each other (a replica
    calling another replica of itself): then :meth:`ambiguous` says so and the caller runs the traces
    again through ``FlowBuilder(shown_pod=...)`` with the folding known.
    """

    def __init__(self, shown_pod: Mapping[Any, str] | None = None) -> None:
        self.fixed = shown_pod is not None
        self._shown = dict(shown_pod) if shown_pod is not None else None
        self.info: dict[_NodeKey, dict[str, Any]] = {}
        self.nodes: dict[_NodeKey, _Acc] = {}
        self.edges: dict[tuple[_NodeKey, _NodeKey], _Acc] = {}
        #: Distinct node pairs told apart while streaming (caller, callee); see :meth:`ambiguous`.
        self.pairs: set[tuple[_NodeKey, _NodeKey]] = set()
        self.pod_spans: Counter[Any] = Counter()
        self.workload: dict[Any, str] = {}
        self._seq = 0
        #: (service, id(attributes), id(resource)) -> (attributes, resource, raw pod, node key, the
        #: BACKEND_SERVICE_NAME attribute): readers
        #: share one attributes/resource dict between the spans that have equal ones, so most spans
        #: skip the attribute lookups. The entry holds the dicts, so their ids stay theirs while cached.
        #: (service, id(attributes), id(resource)) -> (attributes, resource, raw pod, node, backend);
        #: the dicts are kept referenced so their ids cannot be reused while cached.
        self._node_cache: dict[tuple[Any, int, int], tuple[Any, Any, Any, _NodeKey, Any]] = {}

    # --- folding -----------------------------------------------------------------------------

    def fold(self) -> dict[Any, str]:
        """Map pod names to the name drawn: the busiest MAX_PODS_SHOWN replicas of a workload stand alone,
        the rest fold into one "N more pods" box, so 30 replicas do not make a diagram nobody can read."""
        if self._shown is not None:
            return self._shown
        by_workload: dict[str, list[Any]] = defaultdict(list)
        for pod, name in self.workload.items():
            by_workload[name].append(pod)
        out: dict[Any, str] = {}
        for name, pods in by_workload.items():
            if len(pods) <= MAX_PODS_SHOWN + 1:
                continue
            pods.sort(key=lambda p: (-self.pod_spans[p], p))
            rest = pods[MAX_PODS_SHOWN:]
            for pod in rest:
                out[pod] = f"{name}: {len(rest)} more pods"
        return out

    def ambiguous(self) -> bool:
        """True when two raw nodes told apart while streaming turn out to be one box once folded."""
        if self.fixed:
            return False
        shown = self.fold()
        return any(_final_key(a, shown) == _final_key(b, shown) for a, b in self.pairs)

    # --- streaming ---------------------------------------------------------------------------

    def _count_pod(self, span: Mapping[str, Any], pod: Any) -> None:
        self.pod_spans[pod] += 1
        if pod not in self.workload:
            self.workload[pod] = str(
                _get(span, K8S_DEPLOYMENT_NAME)
                or _get(span, K8S_STATEFULSET_NAME)
                or _get(span, K8S_DAEMONSET_NAME)
                or re.sub(r"-[a-z0-9]{1,10}$", "", str(pod))
            )

    def _node_add(self, key: _NodeKey, latency: float, error: bool, layer: str | None) -> None:
        acc = self.nodes.get(key)
        if acc is None:
            acc = self.nodes[key] = _Acc()
        acc.count += 1  # _Acc.add, inlined: once per span
        acc.errors += error
        acc.latencies.append(latency)
        if layer:
            entry = acc.layers.get(layer)
            if entry is None:
                acc.layers[layer] = [1, self._seq]
                self._seq += 1
            else:
                entry[0] += 1

    def _edge_add(
        self, key: tuple[_NodeKey, _NodeKey], latency: float, error: bool, net: float | None = None
    ) -> None:
        acc = self.edges.get(key)
        if acc is None:
            acc = self.edges[key] = _Acc()
        acc.add(latency, error, net)

    def _node_of(self, span: Mapping[str, Any]) -> tuple[Any, _NodeKey, Any]:
        """(the span's raw pod, its process node, its BACKEND_SERVICE_NAME attribute), the node's
        description recorded when first seen."""
        attributes, resource, service = span.get("attributes"), span.get("resource"), span.get("service")
        cache_key = (service, id(attributes), id(resource))
        hit = self._node_cache.get(cache_key)
        if hit is not None:
            return hit[2], hit[3], hit[4]
        name = str(service or "unknown")
        raw_pod = pod = _get(span, K8S_POD_NAME)
        container = _get(span, K8S_CONTAINER_NAME)
        key: _NodeKey
        if self._shown is not None:
            pod = self._shown.get(pod, pod)
            key = f"p|{name}|{pod or ''}|{container or ''}"
        else:
            key = ("p", name, pod if pod else "", f"{container or ''}")
        if key not in self.info:
            self.info[key] = {
                "id": key,
                "label": name,
                "kind": "process",
                "pod": pod,
                "container": container,
                "namespace": _get(span, K8S_NAMESPACE_NAME),
                "node": _get(span, K8S_NODE_NAME),
            }
        if len(self._node_cache) >= _NODE_CACHE_SIZE:
            self._node_cache.clear()
        backend = (attributes or {}).get(BACKEND_SERVICE_NAME)
        self._node_cache[cache_key] = (attributes, resource, raw_pod, key, backend)
        return raw_pod, key, backend

    def _virtual(self, key: _NodeKey, label: str, layer: str, kind: str, **extra: Any) -> _NodeKey:
        if key not in self.info:
            self.info[key] = {"id": key, "label": label, "kind": kind, "fixed_layer": layer, **extra}
        return key

    def add(self, trace: Mapping[str, Any]) -> None:
        """Fold one trace report (spans included; hops when it has none) into the diagram."""
        spans = trace.get("spans") or ()
        if not spans:
            self._add_hops(trace)
            return
        count = not self.fixed
        pairs = self.pairs
        node_add, edge_add, node_of = self._node_add, self._edge_add, self._node_of
        # A span's node and its parent's are looked up by span id: with duplicate ids, the last span
        # with the id wins (as a dict built over the spans has it).
        node_ids: dict[Any, _NodeKey] = {}
        #: parent id -> its children's rows; a row is (span, span id, parent id, raw pod, its
        #: BACKEND_SERVICE_NAME attribute, duration, error), each read from the span once.
        children: dict[Any, list[tuple[Any, ...]]] = {}
        rows = []
        cache, pod_spans, workload = self._node_cache, self.pod_spans, self.workload
        for s in spans:
            hit = cache.get((s.get("service"), id(s.get("attributes")), id(s.get("resource"))))
            pod, key, backend = (hit[2], hit[3], hit[4]) if hit is not None else node_of(s)
            if count and pod:
                if pod in workload:
                    pod_spans[pod] += 1
                else:
                    self._count_pod(s, pod)
            sid, pid = s.get("span_id"), s.get("parent_id")
            node_ids[sid] = key
            row = (s, sid, pid, pod, backend, float(s.get("duration_ms") or 0.0), s.get("status") == "error")
            siblings = children.get(pid)
            if siblings is None:
                children[pid] = [row]
            else:
                siblings.append(row)
            rows.append(row)
        service_name: Any = _UNSET
        for s, sid, pid, pod, backend, duration, error in rows:
            me = node_ids[sid]
            caller = node_ids.get(pid)
            if caller is None or caller != me:
                if caller is not None:
                    pairs.add((caller, me))
                # "span_layer" is what the span is (the processors' classification); "layer" is where its
                # own time went (a client's span is "edge" time), so boxes go by the former.
                node_add(me, duration, error, s.get("span_layer") or s.get("layer"))
            remote = []
            for c in children.get(sid, ()):
                callee = node_ids[c[1]]
                if callee != me:
                    pairs.add((me, callee))
                    remote.append((c, callee))
            if s.get("kind") != "client":
                # A span calling another process without a CLIENT span (ingress-nginx's single span).
                for c, callee in remote:
                    edge_add((me, callee), c[5], c[6])
                continue
            # The network part of the call is a processor fact (processors/network.py).
            net = s.get("net_ms")
            layer = s.get("layer")
            through_service = layer == "service" or (
                remote and pod is None and layer == "ingress" and _get(remote[0][0][0], K8S_POD_NAME)
            )
            if through_service:
                name = backend
                if not name:
                    if service_name is _UNSET:
                        # The trace's first span naming the Kubernetes Service.
                        service_name = next((row[4] for row in rows if row[4]), None)
                    name = service_name or "Service"
                svc = self._virtual(f"s|{name}", str(name), "service", "k8s-service")
                edge_add((me, svc), duration, error)
                node_add(svc, net or 0.0, error and not remote, "service")
                for c, callee in remote:
                    edge_add((svc, callee), c[5], c[6], net)
                continue
            if remote:
                for _, callee in remote:
                    edge_add((me, callee), duration, error, net)
                continue
            # Nobody answered with a span: the callee is the database, an external peer, or unknown
            # (the layer and the names are the processors': the rule table's DB test, placement.peer_host).
            if layer == "db":
                label = str(s.get("db_system") or "database")
                raw_pod = pod
                # The database lives in the pod of the container that opens it (SQLite is a file there).
                target: _NodeKey
                if self._shown is not None:
                    pod = self._shown.get(raw_pod, raw_pod)
                    target = f"d|{label}|{pod or raw_pod or s.get('service')}"
                elif raw_pod:
                    pod, target = raw_pod, ("d", label, raw_pod)
                else:
                    pod, target = raw_pod, ("dw", label, f"{s.get('service')}")
                target = self._virtual(target, label, "db", "database", pod=pod)
            else:
                peer = s.get("peer") or s.get("name")
                target = self._virtual(f"e|{peer}", str(peer), layer or "external", "external")
            self._edge_add((me, target), duration, error)
            self._node_add(target, duration, error, layer)

    def _add_hops(self, trace: Mapping[str, Any]) -> None:
        """Without spans, chain the hops in path order: one node per (layer, service, pod)."""
        previous = None
        for hop in trace.get("hops") or ():
            k8s = hop.get("k8s") or {}
            pod = k8s.get(K8S_POD_NAME) or k8s.get("pod")
            key = f"h|{hop.get('layer')}|{hop.get('service')}|{pod or ''}"
            if key not in self.info:
                self.info[key] = {
                    "id": key,
                    "label": str(hop.get("service") or hop.get("layer") or "?"),
                    "kind": "process",
                    "pod": pod,
                    "container": k8s.get(K8S_CONTAINER_NAME) or k8s.get("container"),
                    "fixed_layer": hop.get("layer") or "unknown",
                }
            error = (trace.get("diagnosis") or {}).get("span_id") == hop.get("span_id") and bool(
                hop.get("span_id")
            )
            self._node_add(key, float(hop.get("duration_ms") or 0.0), error, hop.get("layer"))
            if previous is not None and previous != key:
                self._edge_add((previous, key), float(hop.get("duration_ms") or 0.0), error)
            previous = key

    # --- the diagram -------------------------------------------------------------------------

    def result(self) -> dict[str, Any]:
        """``{"nodes", "edges", "folded_pods"}`` for the page (raw nodes of folded pods merged)."""
        if self.ambiguous():
            raise RuntimeError("flow diagram needs a second pass with the pod folding known")
        shown = self.fold()
        final = {raw: _final_key(raw, shown) for raw in self.info}
        metas: dict[str, dict[str, Any]] = {}
        accs: dict[str, _Acc] = {}
        for raw, meta in self.info.items():
            key = final[raw]
            if key not in metas:
                meta = dict(meta, id=key)
                if isinstance(raw, tuple):
                    meta["pod"] = shown.get(meta["pod"], meta["pod"])
                metas[key] = meta
            acc = self.nodes.get(raw)
            if acc is not None:
                accs.setdefault(key, _Acc()).merge(acc)
        out_nodes = []
        for key, meta in metas.items():
            acc = accs.get(key) or _Acc()
            layer = meta.pop("fixed_layer", None) or acc.top_layer() or "unknown"
            out_nodes.append({**meta, "layer": layer, **acc.stats()})
        out_nodes.sort(key=lambda n: (_layer_index(n["layer"]), str(n.get("pod") or ""), n["label"]))
        edges: dict[tuple[str, str], _Acc] = {}
        for (a, b), acc in self.edges.items():
            edges.setdefault((final[a], final[b]), _Acc()).merge(acc)
        out_edges = [{"from": a, "to": b, **acc.stats()} for (a, b), acc in edges.items()]
        return {"nodes": out_nodes, "edges": out_edges, "folded_pods": sorted(set(shown.values()))}


def _final_key(key: _NodeKey, shown: Mapping[Any, str]) -> str:
    """The node id drawn: a process or database node's pod replaced by its folded box, if any."""
    if isinstance(key, str):
        return key
    if key[0] == "p":
        _, service, pod, container = key
        pod = shown.get(pod, pod)
        return f"p|{service}|{pod or ''}|{container}"
    if key[0] == "d":
        return f"d|{key[1]}|{shown.get(key[2], key[2])}"
    return f"d|{key[1]}|{key[2]}"

"""Aggregates over many traces, folded in one trace at a time.

The summary must not need every trace in memory (a million spans per run): per trace we append one
float per layer with time to that layer's ``array('d')`` (at most 72 bytes a trace; a trace without
the layer counts as an implied zero) and update a few counters; percentiles
are computed once at the end. Routes and services get the same treatment, with the number of distinct
routes capped (:data:`MAX_ROUTES`) so ids in URL paths cannot grow memory without bound.

The partitioned analysis (``tracekit/analyze/mapreduce.py``) folds each partition's traces into its own
aggregator and :func:`merge_aggregators` adds them up: the percentiles are computed over the union of
the values, so the summary is the one a single process computes. For that, groups and failure reasons
remember where they were first seen (``Trace.order``), which is what their order in the summary
depends on when counts tie.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Iterable
from typing import Any

from tracekit.analyze.model import LAYERS
from tracekit.analyze.tree import SpanTree

#: Distinct routes tracked before the rest are counted under :data:`OTHER_ROUTE`.
MAX_ROUTES = 1000
OTHER_ROUTE = "(other routes)"


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile (as numpy's default) of already sorted values; 0.0 when empty."""
    n = len(sorted_values)
    if n == 0:
        return 0.0
    pos = (n - 1) * q
    lo = int(pos)
    hi = min(lo + 1, n - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def stats(values: array[float] | list[float], zeros: int = 0) -> dict[str, float]:
    """mean, p50, p95, p99 of ``values`` (plus ``zeros`` implied zeros) in ms, rounded to the µs."""
    ordered = sorted(values)
    if zeros:
        ordered = [0.0] * zeros + ordered
    n = len(ordered)
    return {
        "mean_ms": round(sum(ordered) / n, 6) if n else 0.0,
        "p50_ms": round(percentile(ordered, 0.50), 6),
        "p95_ms": round(percentile(ordered, 0.95), 6),
        "p99_ms": round(percentile(ordered, 0.99), 6),
    }


class _Group:
    """Per-route or per-service figures."""

    __slots__ = ("count", "errors", "first", "layer_ns", "values")

    def __init__(self, first: Any = None) -> None:
        #: ``Trace.order`` of the first trace in the group (parallel runs only; else ``None``).
        self.first = first
        self.count = 0
        self.errors = 0
        self.values: array[float] = array("d")
        self.layer_ns: dict[str, int] = {}


class Aggregator:
    """Fold trace results into the summary (docs/design.md JSON contract, plus routes, services, failures)."""

    def __init__(self, max_routes: int = MAX_ROUTES) -> None:
        #: Distinct routes kept before the rest are counted under :data:`OTHER_ROUTE`.
        self.max_routes = max_routes
        self.traces = 0
        self.spans = 0
        self.error_traces = 0
        self.total_ns = 0
        self.durations: array[float] = array("d")
        self.layer_ms: dict[str, array[float]] = {layer: array("d") for layer in LAYERS}
        self.layer_ns: dict[str, int] = dict.fromkeys(LAYERS, 0)
        self.layer_count: dict[str, int] = dict.fromkeys(LAYERS, 0)
        self.routes: dict[str, _Group] = {}
        self.services: dict[str, _Group] = {}
        self.failures: Counter[tuple[str, str]] = Counter()
        #: ``Trace.order`` of the first trace of each failure reason (parallel runs only).
        self.failures_first: dict[tuple[str, str], Any] = {}

    def add(self, tree: SpanTree, route: str, failed: bool) -> None:
        """Count one analysed trace."""
        root = tree.root
        assert root is not None
        duration = root.end - root.start
        duration_ms = duration / 1e6
        self.traces += 1
        self.spans += len(tree.trace.spans)
        self.total_ns += duration
        self.durations.append(duration_ms)
        if failed:
            self.error_traces += 1
            diag = tree.diagnosis
            reason = (str(diag["failed_layer"]), str(diag.get("kind", "error")))
            if reason not in self.failures:
                self.failures_first[reason] = tree.trace.order
            self.failures[reason] += 1

        group = self.routes.get(route)
        if group is None:
            group = self._new_route(route, tree.trace.order)
        group.count += 1
        group.errors += failed
        group.values.append(duration_ms)
        group_ns = group.layer_ns
        layer_ns = self.layer_ns
        layer_ms = self.layer_ms
        layer_count = self.layer_count
        for layer, ns in tree.attribution.items():
            group_ns[layer] = group_ns.get(layer, 0) + ns
            # Only layers with time are stored; the zeros of the others are implied (see summary()).
            if ns:
                layer_ms[layer].append(ns / 1e6)
                layer_ns[layer] += ns
                layer_count[layer] += 1

        services = self.services
        for svc, ns in tree.service_ns.items():
            sgroup = services.get(svc)
            if sgroup is None:
                sgroup = services[svc] = _Group(tree.trace.order)
            sgroup.count += 1
            sgroup.errors += failed
            sgroup.values.append(ns / 1e6)

    def _new_route(self, route: str, first: Any = None) -> _Group:
        """The group of a route not seen yet; past :data:`MAX_ROUTES` routes, the shared other group."""
        if len(self.routes) >= self.max_routes:
            route = OTHER_ROUTE
            group = self.routes.get(route)
            if group is not None:
                return group
        group = self.routes[route] = _Group(first)
        return group

    def summary(self) -> dict[str, Any]:
        """The ``summary`` object of the JSON contract."""
        total = self.total_ns or 1
        layers: dict[str, Any] = {}
        entry: dict[str, Any]
        for layer in LAYERS:
            if not self.layer_count[layer]:
                continue
            values = self.layer_ms[layer]
            entry = stats(values, zeros=self.traces - len(values))
            entry["share"] = round(self.layer_ns[layer] / total, 6)
            entry["count"] = self.layer_count[layer]
            entry["total_ms"] = self.layer_ns[layer] / 1e6
            layers[layer] = entry
        routes = {}
        for route, group in sorted(self.routes.items(), key=lambda kv: -kv[1].count):
            entry = {"count": group.count, "errors": group.errors, **stats(group.values)}
            g_total = sum(group.layer_ns.values()) or 1
            entry["layers"] = {
                layer: {
                    "mean_ms": round(group.layer_ns[layer] / group.count / 1e6, 6),
                    "share": round(group.layer_ns[layer] / g_total, 6),
                }
                for layer in LAYERS
                if group.layer_ns.get(layer)
            }
            routes[route] = entry
        services = {}
        for svc, group in sorted(self.services.items()):
            entry = {"traces": group.count, "errors": group.errors, **stats(group.values)}
            # fsum: exact, so the result does not depend on the order the values were added in
            entry["share"] = round(math.fsum(group.values) * 1e6 / total, 6)
            services[svc] = entry
        by_layer: Counter[str] = Counter()
        for (layer, _kind), n in self.failures.items():
            by_layer[layer] += n
        failures = {
            "by_layer": dict(sorted(by_layer.items(), key=lambda kv: -kv[1])),
            "by_reason": [
                {"layer": layer, "kind": kind, "count": n}
                for (layer, kind), n in sorted(self.failures.items(), key=lambda kv: -kv[1])
            ],
        }
        return {
            "traces": self.traces,
            "spans": self.spans,
            "error_traces": self.error_traces,
            "layers": layers,
            "duration": stats(self.durations),
            "routes": routes,
            "services": services,
            "failures": failures,
        }


def _merge_group(into: _Group | None, part: _Group) -> _Group:
    if into is None:
        into = _Group(part.first)
    elif part.first is not None and (into.first is None or part.first < into.first):
        into.first = part.first
    into.count += part.count
    into.errors += part.errors
    into.values.extend(part.values)
    for layer, ns in part.layer_ns.items():
        into.layer_ns[layer] = into.layer_ns.get(layer, 0) + ns
    return into


def _by_first(items: Iterable[tuple[Any, Any]], first: Any) -> list[tuple[Any, Any]]:
    """Items in first-seen order: the insertion order a single aggregator would have given them."""
    return sorted(items, key=lambda kv: first(kv))


def merge_aggregators(parts: list[Aggregator]) -> Aggregator:
    """One aggregator holding what ``parts`` (disjoint sets of traces) hold; see the module docstring.

    The summary equals a single aggregator's over all the traces: counters add up, value arrays are
    concatenated (percentiles and means sort them first), and routes, services and failure reasons
    are re-inserted in the order they were first seen, so ties in the summary's sort by count come
    out the same. One difference remains: past :data:`MAX_ROUTES` distinct routes, each part chose
    its own first 1,000, so which routes are folded into :data:`OTHER_ROUTE` may differ.
    """
    merged = Aggregator()
    routes: dict[str, _Group] = {}
    services: dict[str, _Group] = {}
    failures_first: dict[tuple[str, str], Any] = {}
    for part in parts:
        merged.traces += part.traces
        merged.spans += part.spans
        merged.error_traces += part.error_traces
        merged.total_ns += part.total_ns
        merged.durations.extend(part.durations)
        for layer in LAYERS:
            merged.layer_ms[layer].extend(part.layer_ms[layer])
            merged.layer_ns[layer] += part.layer_ns[layer]
            merged.layer_count[layer] += part.layer_count[layer]
        for name, group in part.routes.items():
            routes[name] = _merge_group(routes.get(name), group)
        for name, group in part.services.items():
            services[name] = _merge_group(services.get(name), group)
        merged.failures.update(part.failures)
        for reason, first in part.failures_first.items():
            if reason not in failures_first or first < failures_first[reason]:
                failures_first[reason] = first

    def first_of(kv: tuple[Any, _Group]) -> Any:
        return kv[1].first

    # Routes: the first MAX_ROUTES seen keep their own group, the rest go to the shared one.
    other: _Group | None = None
    kept: list[tuple[str, _Group]] = []
    for name, group in _by_first(routes.items(), first_of):
        if name != OTHER_ROUTE and len(kept) < MAX_ROUTES:
            kept.append((name, group))
        else:
            other = _merge_group(other, group)
    if other is not None:
        kept.append((OTHER_ROUTE, other))
    merged.routes = dict(_by_first(kept, first_of))
    merged.services = dict(_by_first(services.items(), first_of))
    merged.failures = Counter(dict(_by_first(merged.failures.items(), lambda kv: failures_first[kv[0]])))
    merged.failures_first = failures_first
    return merged

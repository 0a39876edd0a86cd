"""Aggregates over many traces, folded in one trace at a time.

The summary must not need every trace in memory (a million spans per run): per trace we append one
float per layer with time to that layer's ``array('d')`` (at most 72 bytes a trace; a trace without
the layer counts as an implied zero) and update a few counters; percentiles
are computed once at the end. Routes and services get the same treatment, with the number of distinct
routes capped (:data:`MAX_ROUTES`) so ids in URL paths cannot grow memory without bound.
"""

from __future__ import annotations

from array import array
from collections import Counter
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

    __slots__ = ("count", "errors", "layer_ns", "values")

    def __init__(self) -> None:
        self.count = 0
        self.errors = 0
        self.values: array[float] = array("d")
        self.layer_ns: dict[str, int] = {}


class Aggregator:
    """Fold trace results into the summary (DESIGN.md contract plus routes, services, failures)."""

    def __init__(self) -> None:
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
            self.failures[(str(diag["failed_layer"]), str(diag.get("kind", "error")))] += 1

        group = self.routes.get(route)
        if group is None:
            group = self._new_route(route)
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
                sgroup = services[svc] = _Group()
            sgroup.count += 1
            sgroup.errors += failed
            sgroup.values.append(ns / 1e6)

    def _new_route(self, route: str) -> _Group:
        """The group of a route not seen yet; past :data:`MAX_ROUTES` routes, the shared other group."""
        if len(self.routes) >= MAX_ROUTES:
            route = OTHER_ROUTE
            group = self.routes.get(route)
            if group is not None:
                return group
        group = self.routes[route] = _Group()
        return group

    def summary(self) -> dict[str, Any]:
        """The ``summary`` object of the JSON contract."""
        total = self.total_ns or 1
        layers: dict[str, Any] = {}
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
            entry["share"] = round(sum(group.values) * 1e6 / total, 6)
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

"""Aggregates over many traces, folded in one trace at a time.

The summary must not need every trace in memory (a million spans per run): per trace we append one
float per layer with time to that layer's ``array('d')`` (at most 72 bytes a trace; a trace without
the layer counts as an implied zero) and update a few counters; percentiles
are computed once at the end. Routes and services get the same treatment, with the number of distinct
routes capped (:data:`MAX_ROUTES`) so ids in URL paths cannot grow memory without bound.

**Exact while it fits, a sketch beyond.** The values are held exactly while the aggregator holds at
most its budget of them (:data:`EXACT_VALUES`, 8 bytes each; ``TRACEKIT_EXACT_PERCENTILES`` changes
it). Past it every value list becomes a DDSketch (:data:`RELATIVE_ACCURACY`: each percentile is
within 1% of a value of the right rank), which is mergeable and bounded in memory whatever the number
of traces; the summary says which (``summary.percentiles``). Sketch bins are integer counts, so a
merged sketch is the same whatever the order of the merge; means come from exact integer sums.

The partitioned analysis (``tracekit/analyze/mapreduce.py``) folds each partition's traces into its own
aggregator and :func:`merge_aggregators` adds them up: the percentiles are computed over the union of
the values, so the summary is the one a single process computes. For that, groups and failure reasons
remember where they were first seen (``Trace.order``), which is what their order in the summary
depends on when counts tie.
"""

from __future__ import annotations

import math
import os
from array import array
from collections import Counter
from collections.abc import Iterable
from typing import Any

from ddsketch import DDSketch

from tracekit.analyze.model import LAYERS
from tracekit.analyze.tree import SpanTree

#: Distinct routes tracked before the rest are counted under :data:`OTHER_ROUTE`.
MAX_ROUTES = 1000
OTHER_ROUTE = "(other routes)"


#: Values held exactly (8 bytes each) before every value list becomes a sketch: 8M values (64 MB) is
#: about 1.3 million traces with six layers each.
EXACT_VALUES = 8_000_000
#: Overrides :data:`EXACT_VALUES` (a number of values).
EXACT_VALUES_ENV = "TRACEKIT_EXACT_PERCENTILES"
#: DDSketch's relative accuracy: a sketched percentile is within this fraction of a value of its rank.
RELATIVE_ACCURACY = 0.01


def exact_values() -> int:
    """The budget of exact values: :data:`EXACT_VALUES_ENV`, else :data:`EXACT_VALUES`."""
    value = os.environ.get(EXACT_VALUES_ENV)
    if not value:
        return EXACT_VALUES
    try:
        return max(0, int(value))
    except ValueError:
        from tracekit.errors import TracekitError

        raise TracekitError(f"{EXACT_VALUES_ENV}={value!r}: expected a number of values") from None


class Sample:
    """The values of one percentile series: an exact list, or (past the budget) a DDSketch.

    ``total_ns`` is the exact sum of the values (each a whole number of nanoseconds), so means do
    not depend on how the values were split and merged.
    """

    __slots__ = ("exact", "sketch", "total_ns")

    def __init__(self) -> None:
        self.exact: array[float] = array("d")
        self.sketch: DDSketch | None = None
        self.total_ns = 0

    def add_ns(self, ns: int) -> None:
        self.total_ns += ns
        if self.sketch is None:
            self.exact.append(ns / 1e6)
        else:
            self.sketch.add(ns / 1e6)

    def __len__(self) -> int:
        return len(self.exact) if self.sketch is None else int(self.sketch.count)

    def to_sketch(self) -> DDSketch:
        if self.sketch is None:
            sketch = DDSketch(relative_accuracy=RELATIVE_ACCURACY)
            for value in self.exact:
                sketch.add(value)
            self.sketch, self.exact = sketch, array("d")
        return self.sketch

    def merge(self, other: Sample) -> None:
        self.total_ns += other.total_ns
        if self.sketch is None and other.sketch is None:
            self.exact.extend(other.exact)
            return
        sketch = self.to_sketch()
        if other.sketch is not None:
            sketch.merge(other.sketch)
        else:
            for value in other.exact:
                sketch.add(value)

    def stats(self, zeros: int = 0) -> dict[str, float]:
        """mean, p50, p95, p99 in ms (``zeros`` implied zero values added)."""
        if self.sketch is None:
            return stats(self.exact, zeros)
        sketch = self.sketch
        if zeros:
            sketch = DDSketch(relative_accuracy=RELATIVE_ACCURACY)
            sketch.merge(self.sketch)
            sketch.add(0.0, zeros)
        n = int(sketch.count)

        def q(x: float) -> float:
            value = sketch.get_quantile_value(x)
            return round(value, 6) if value is not None else 0.0

        return {
            "mean_ms": round(self.total_ns / 1e6 / n, 6) if n else 0.0,
            "p50_ms": q(0.50),
            "p95_ms": q(0.95),
            "p99_ms": q(0.99),
        }


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
        self.values = Sample()
        self.layer_ns: dict[str, int] = {}


class Aggregator:
    """Fold trace results into the summary (docs/design.md JSON contract, plus routes, services, failures)."""

    def __init__(self, max_routes: int = MAX_ROUTES, exact_budget: int | None = None) -> None:
        #: Distinct routes kept before the rest are counted under :data:`OTHER_ROUTE`.
        self.max_routes = max_routes
        #: Values held exactly before they all become sketches (see the module docstring).
        self.exact_budget = exact_values() if exact_budget is None else exact_budget
        #: Values held so far, and whether they are sketches now.
        self.held = 0
        self.sketched = False
        self.traces = 0
        self.spans = 0
        self.error_traces = 0
        self.total_ns = 0
        self.durations = Sample()
        self.layer_ms: dict[str, Sample] = {layer: Sample() for layer in LAYERS}
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
        held = 2  # the duration, and the route's
        self.traces += 1
        self.spans += len(tree.trace.spans)
        self.total_ns += duration
        self.durations.add_ns(duration)
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
        group.values.add_ns(duration)
        group_ns = group.layer_ns
        layer_ns = self.layer_ns
        layer_ms = self.layer_ms
        layer_count = self.layer_count
        for layer, ns in tree.attribution.items():
            group_ns[layer] = group_ns.get(layer, 0) + ns
            # Only layers with time are stored; the zeros of the others are implied (see summary()).
            if ns:
                layer_ms[layer].add_ns(ns)
                held += 1
                layer_ns[layer] += ns
                layer_count[layer] += 1

        services = self.services
        for svc, ns in tree.service_ns.items():
            sgroup = services.get(svc)
            if sgroup is None:
                sgroup = services[svc] = _Group(tree.trace.order)
            sgroup.count += 1
            sgroup.errors += failed
            sgroup.values.add_ns(ns)
            held += 1
        self.held += held
        if self.held > self.exact_budget and not self.sketched:
            self.to_sketches()

    def samples(self) -> Iterable[Sample]:
        yield self.durations
        yield from self.layer_ms.values()
        for group in (*self.routes.values(), *self.services.values()):
            yield group.values

    def to_sketches(self) -> None:
        """Past the budget: every value list becomes a sketch (and stays one)."""
        for sample in self.samples():
            sample.to_sketch()
        self.sketched = True

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
            entry = values.stats(zeros=self.traces - len(values))
            entry["share"] = round(self.layer_ns[layer] / total, 6)
            entry["count"] = self.layer_count[layer]
            entry["total_ms"] = self.layer_ns[layer] / 1e6
            layers[layer] = entry
        routes = {}
        for route, group in sorted(self.routes.items(), key=lambda kv: -kv[1].count):
            entry = {"count": group.count, "errors": group.errors, **group.values.stats()}
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
            entry = {"traces": group.count, "errors": group.errors, **group.values.stats()}
            # fsum (or the integer sum of a sketched list): exact, so the result does not depend on
            # the order the values were added in
            values = group.values
            ms = math.fsum(values.exact) if values.sketch is None else values.total_ns / 1e6
            entry["share"] = round(ms * 1e6 / total, 6)
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
            "duration": self.durations.stats(),
            "routes": routes,
            "services": services,
            "failures": failures,
            "percentiles": (
                {
                    "method": "ddsketch",
                    "relative_accuracy": RELATIVE_ACCURACY,
                    "exact_budget": self.exact_budget,
                }
                if self.sketched
                else {"method": "exact", "exact_budget": self.exact_budget}
            ),
        }


def _merge_group(into: _Group | None, part: _Group) -> _Group:
    if into is None:
        into = _Group(part.first)
    elif part.first is not None and (into.first is None or part.first < into.first):
        into.first = part.first
    into.count += part.count
    into.errors += part.errors
    into.values.merge(part.values)
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

    Percentiles: exact when all the parts' values together fit the budget (the same test one
    aggregator of every trace makes), else every part's values are sketched first and the sketches
    merged (bin counts add up: the same sketch whatever the split).
    """
    budget = parts[0].exact_budget if parts else exact_values()
    merged = Aggregator(exact_budget=budget)
    merged.held = sum(part.held for part in parts)
    if merged.held > budget or any(part.sketched for part in parts):
        for part in parts:
            part.to_sketches()
        merged.to_sketches()
    routes: dict[str, _Group] = {}
    services: dict[str, _Group] = {}
    failures_first: dict[tuple[str, str], Any] = {}
    for part in parts:
        merged.traces += part.traces
        merged.spans += part.spans
        merged.error_traces += part.error_traces
        merged.total_ns += part.total_ns
        merged.durations.merge(part.durations)
        for layer in LAYERS:
            merged.layer_ms[layer].merge(part.layer_ms[layer])
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

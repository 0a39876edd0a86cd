"""Compare two sides layer by layer, overall and per route: the diff's JSON contract (docs/diff.md).

Every comparison is one layer's time per request on the baseline against the candidate, the requests
that never touched the layer counting as 0 ms (as in the analyzer's summary). Rows are made for every
layer with time on either side, overall, and per route for the routes with at least
:attr:`DiffOptions.min_route_traces` traces on both sides. All their p-values are corrected together
(:func:`tracekit.diff.stats.adjust`); a row's verdict needs its corrected p-value under ``alpha`` and a
shift of at least the floor (``max(min_shift_ms, min_shift_ratio * baseline median of the layer)``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tracekit.analyze.model import LAYERS
from tracekit.diff import stats
from tracekit.diff.sides import Side

#: Distribution points kept per side and layer for the HTML page's ECDFs.
ECDF_POINTS = 200
#: New failure reasons listed (the most frequent first).
MAX_NEW_REASONS = 20


@dataclass(frozen=True)
class DiffOptions:
    """What counts as a change (the command's options)."""

    alpha: float = 0.01
    min_shift_ms: float = 1.0
    #: Relative floor, as a fraction of the baseline's median time in the layer.
    min_shift_ratio: float = 0.05
    min_route_traces: int = 10


def describe(values: NDArray[np.float64]) -> dict[str, Any]:
    """count (requests with time in the layer), traces, mean and percentiles in ms (rounded to the ns)."""
    if values.size == 0:
        return {"count": 0, "traces": 0, "mean_ms": 0.0, "p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {
        "count": int(np.count_nonzero(values)),
        "traces": int(values.size),
        "mean_ms": round(float(values.mean()), 6),
        "p50_ms": round(float(p50), 6),
        "p95_ms": round(float(p95), 6),
        "p99_ms": round(float(p99), 6),
    }


def _row(x: NDArray[np.float64], y: NDArray[np.float64], alpha: float) -> dict[str, Any]:
    """One comparison before correction: both sides' figures, the shift, its interval, the raw p-value."""
    result = stats.compare(x, y, alpha)
    base, cand = describe(x), describe(y)
    return {
        "baseline": base,
        "candidate": cand,
        "shift_ms": round(result.shift_ms, 6),
        "ci_ms": [round(result.ci_low_ms, 6), round(result.ci_high_ms, 6)],
        "mean_shift_ms": round(cand["mean_ms"] - base["mean_ms"], 6),
        "p_raw": result.p_value,
    }


def _layers_of(base: Side, cand: Side, b_rows: Any = None, c_rows: Any = None) -> list[str]:
    """Layers with time on either side (within the given rows), in path order."""
    names = set()
    for side, rows in ((base, b_rows), (cand, c_rows)):
        for layer, values in side.layers.items():
            part = values if rows is None else values[rows]
            if part.size and part.any():
                names.add(layer)
    return [layer for layer in LAYERS if layer in names] + sorted(names - set(LAYERS))


def _route_rows(side: Side) -> dict[str, NDArray[np.intp]]:
    """Route -> indices of its traces."""
    order = np.argsort(side.route_index, kind="stable")
    counts = np.bincount(side.route_index, minlength=len(side.routes))
    out: dict[str, NDArray[np.intp]] = {}
    start = 0
    for route_id, count in enumerate(counts):
        out[side.routes[route_id]] = order[start : start + count]
        start += count
    return out


def ecdf_points(values: NDArray[np.float64], points: int = ECDF_POINTS) -> list[float]:
    """Evenly spaced quantiles (0 to 100%) of ``values``: the ECDF the page draws, at a fixed size."""
    if values.size == 0:
        return []
    qs = np.linspace(0.0, 100.0, min(points, values.size) if values.size > 1 else 1)
    return [round(float(v), 6) for v in np.percentile(values, qs)]


def diff(base: Side, cand: Side, options: DiffOptions | None = None) -> dict[str, Any]:
    """The diff of two sides: the JSON contract of docs/diff.md."""
    options = options or DiffOptions()
    alpha = options.alpha
    rows: list[dict[str, Any]] = []  # every comparison, for the correction

    layers: dict[str, dict[str, Any]] = {}
    for layer in _layers_of(base, cand):
        row = _row(base.layer(layer), cand.layer(layer), alpha)
        layers[layer] = row
        rows.append(row)

    b_routes, c_routes = _route_rows(base), _route_rows(cand)
    routes: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    names = sorted(
        set(b_routes) | set(c_routes),
        key=lambda r: (-(b_routes.get(r, np.empty(0)).size + c_routes.get(r, np.empty(0)).size), r),
    )
    for route in names:
        b_idx, c_idx = b_routes.get(route), c_routes.get(route)
        b_n = 0 if b_idx is None else b_idx.size
        c_n = 0 if c_idx is None else c_idx.size
        if b_idx is None or c_idx is None or min(b_n, c_n) < options.min_route_traces:
            skipped.append({"route": route, "baseline": b_n, "candidate": c_n})
            continue
        entry: dict[str, Any] = {"route": route, "baseline": b_n, "candidate": c_n, "layers": {}}
        for layer in _layers_of(base, cand, b_idx, c_idx):
            row = _row(base.layer(layer)[b_idx], cand.layer(layer)[c_idx], alpha)
            entry["layers"][layer] = row
            rows.append(row)
        routes.append(entry)

    adjusted = stats.adjust([row["p_raw"] for row in rows])
    for row, p in zip(rows, adjusted, strict=True):
        floor = stats.floor_ms(row["baseline"]["p50_ms"], options.min_shift_ms, options.min_shift_ratio)
        row["p_value"] = p
        row["floor_ms"] = round(floor, 6)
        row["verdict"] = stats.verdict(row["shift_ms"], p, alpha, floor)

    for layer, row in layers.items():
        row["distribution"] = {
            "baseline": ecdf_points(base.layer(layer)),
            "candidate": ecdf_points(cand.layer(layer)),
        }

    result: dict[str, Any] = {
        "baseline": _side_summary(base),
        "candidate": _side_summary(cand),
        "settings": {
            "alpha": alpha,
            "confidence": 1 - alpha,
            "min_shift_ms": options.min_shift_ms,
            "min_shift_ratio": options.min_shift_ratio,
            "min_route_traces": options.min_route_traces,
            "estimator": "hodges-lehmann",
            "interval": "moses",
            "test": "mann-whitney-u",
            "correction": "benjamini-hochberg",
            "comparisons": len(rows),
        },
        "layers": layers,
        "routes": routes,
        "routes_not_compared": skipped,
        **_failures(base, cand, alpha),
    }
    result["verdict"] = _overall(result)
    result["headline"] = headline(result)
    return result


def _side_summary(side: Side) -> dict[str, Any]:
    out: dict[str, Any] = {
        "traces": side.traces,
        "sources": side.sources,
        "error_traces": side.error_traces,
    }
    if side.read != side.traces:
        out["traces_read"] = side.read
    return out


def _failures(base: Side, cand: Side, alpha: float) -> dict[str, Any]:
    """Failed requests per layer (with a verdict on the failure rate) and per kind; new reasons."""
    by_layer: dict[str, dict[str, Any]] = {}
    b_layer: Counter[str] = Counter()
    c_layer: Counter[str] = Counter()
    for (layer, _kind), n in base.failures.items():
        b_layer[layer] += n
    for (layer, _kind), n in cand.failures.items():
        c_layer[layer] += n
    for layer in sorted(set(b_layer) | set(c_layer), key=lambda name: -(b_layer[name] + c_layer[name])):
        by_layer[layer] = {
            "baseline": b_layer[layer],
            "candidate": c_layer[layer],
            "p_raw": stats.failure_rate_p(b_layer[layer], base.traces, c_layer[layer], cand.traces),
        }
    # The failure rows are a family of their own: their own correction, the same alpha.
    entries = list(by_layer.values())
    for entry, p in zip(entries, stats.adjust([e["p_raw"] for e in entries]), strict=True):
        entry["p_value"] = p
        change = entry["candidate"] / max(cand.traces, 1) - entry["baseline"] / max(base.traces, 1)
        entry["verdict"] = (
            "unchanged" if p >= alpha or change == 0 else "regressed" if change > 0 else "improved"
        )
    kinds: list[dict[str, Any]] = [
        {"layer": layer, "kind": kind, "baseline": base.failures.get((layer, kind), 0), "candidate": n}
        for (layer, kind), n in cand.failures.items()
    ] + [
        {"layer": layer, "kind": kind, "baseline": n, "candidate": 0}
        for (layer, kind), n in base.failures.items()
        if (layer, kind) not in cand.failures
    ]
    kinds.sort(key=lambda k: (-(k["candidate"] - k["baseline"]), k["layer"], k["kind"]))
    new = sorted(
        ((reason, n) for reason, n in cand.reasons.items() if reason not in base.reasons),
        key=lambda item: (-item[1], item[0]),
    )[:MAX_NEW_REASONS]
    return {
        "failures": by_layer,
        "failure_kinds": kinds,
        "new_failure_reasons": [reason for reason, _ in new],
        "new_failure_reason_counts": [{"reason": reason, "candidate": n} for reason, n in new],
    }


def changed_rows(result: dict[str, Any], verdict: str) -> list[tuple[str | None, str, dict[str, Any]]]:
    """(route or None for overall, layer, row) of every row with ``verdict``, the largest shift first."""
    found: list[tuple[str | None, str, dict[str, Any]]] = [
        (None, layer, row) for layer, row in result["layers"].items() if row["verdict"] == verdict
    ]
    for entry in result["routes"]:
        for layer, row in entry["layers"].items():
            if row["verdict"] == verdict:
                found.append((entry["route"], layer, row))
    found.sort(key=lambda item: (item[0] is not None, -abs(item[2]["shift_ms"])))
    return found


def failures_with(result: dict[str, Any], verdict: str) -> list[str]:
    """Layers whose failure rate has ``verdict``, the largest change in count first."""
    items = [(layer, e) for layer, e in result["failures"].items() if e["verdict"] == verdict]
    items.sort(key=lambda item: -abs(item[1]["candidate"] - item[1]["baseline"]))
    return [layer for layer, _ in items]


def _overall(result: dict[str, Any]) -> str:
    """``regressed`` when any time row or failure rate regressed, else ``improved`` if any improved."""
    if changed_rows(result, "regressed") or failures_with(result, "regressed"):
        return "regressed"
    if changed_rows(result, "improved") or failures_with(result, "improved"):
        return "improved"
    return "unchanged"


def _describe_failures(result: dict[str, Any], layer: str) -> str:
    entry = result["failures"][layer]
    base_n, cand_n = result["baseline"]["traces"], result["candidate"]["traces"]
    return (
        f"{layer} failures {entry['baseline']:,} of {base_n:,} -> {entry['candidate']:,} of {cand_n:,} "
        f"requests (p={entry['p_value']:.2g})"
    )


def fmt_ms(value: float, sign: bool = False) -> str:
    """A duration for people: 3 significant figures down to the µs."""
    a = abs(value)
    text = f"{value:+.0f}" if sign else f"{value:.0f}"
    if a < 100:
        text = f"{value:+.1f}" if sign else f"{value:.1f}"
    if a < 10:
        text = f"{value:+.2f}" if sign else f"{value:.2f}"
    if a < 0.1:
        text = f"{value:+.3f}" if sign else f"{value:.3f}"
    return f"{text} ms"


def describe_row(route: str | None, layer: str, row: dict[str, Any], confidence: float) -> str:
    """``db +40.1 ms per request (99% CI +39.8 to +40.5 ms, p=3e-12)``, with the route when there is one."""
    low, high = row["ci_ms"]
    where = f"{layer} on {route}" if route is not None else layer
    return (
        f"{where} {fmt_ms(row['shift_ms'], sign=True)} per request "
        f"({confidence:.0%} CI {fmt_ms(low, sign=True)} to {fmt_ms(high, sign=True)}, "
        f"p={row['p_value']:.2g})"
    )


def _layer_names(rows: list[tuple[str | None, str, dict[str, Any]]], leave_out: str) -> list[str]:
    """The distinct layers of ``rows`` but ``leave_out``, in path order, ``(on N routes)`` for those
    changed on routes only."""
    overall = {layer for route, layer, _ in rows if route is None and layer != leave_out}
    on_routes: Counter[str] = Counter(
        layer for route, layer, _ in rows if route is not None and layer != leave_out
    )
    names = [layer for layer in LAYERS if layer in overall or layer in on_routes]
    names += sorted((overall | set(on_routes)) - set(LAYERS))
    return [
        name
        if name in overall
        else f"{name} (on {on_routes[name]} route{'s' if on_routes[name] > 1 else ''})"
        for name in names
    ]


def headline(result: dict[str, Any]) -> str:
    """The one line that opens the text output: what regressed most, else what improved, else nothing."""
    confidence = result["settings"]["confidence"]
    regressed = changed_rows(result, "regressed")
    improved = changed_rows(result, "improved")
    failing = failures_with(result, "regressed")
    if regressed:
        route, layer, row = regressed[0]
        text = f"regressed: {describe_row(route, layer, row, confidence)}"
        if route is None:
            on = [
                e["route"]
                for e in result["routes"]
                if e["layers"].get(layer, {}).get("verdict") == "regressed"
            ]
            if on and len(on) == len(result["routes"]):
                text += ", on every route compared"
            elif on:
                text += f", on {len(on)} of {len(result['routes'])} routes compared"
        others = _layer_names(regressed, leave_out=layer)
        if others:
            text += f"; also regressed: {', '.join(others)}"
        if failing:
            text += f"; more failures: {', '.join(failing)}"
        return text
    if failing:
        return f"regressed: {_describe_failures(result, failing[0])}" + (
            f"; more failures also in: {', '.join(failing[1:])}" if failing[1:] else ""
        )
    if improved:
        route, layer, row = improved[0]
        return f"no regression; improved: {describe_row(route, layer, row, confidence)}"
    fewer = failures_with(result, "improved")
    if fewer:
        return f"no regression; improved: {_describe_failures(result, fewer[0])}"
    settings = result["settings"]
    n, m = result["baseline"]["traces"], result["candidate"]["traces"]
    if stats.smallest_p(n, m) >= settings["alpha"]:
        best = stats.smallest_p(n, m)
        return (
            f"too few requests to tell a change from noise ({n:,} against {m:,}: even all candidate requests "
            f"slower than every baseline one would give p={best:.2g}, alpha {settings['alpha']:g})"
        )
    return (
        f"nothing changed beyond noise ({settings['comparisons']} comparisons, alpha {settings['alpha']:g}, "
        f"shifts under {fmt_ms(settings['min_shift_ms'])} or {settings['min_shift_ratio']:.0%} ignored)"
    )

"""What the analyzer says about a demo run, set against the injected truth: pure functions."""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from demo_app.launcher import DemoRun
from demo_app.scenarios import Scenario


def failed_layers(report: dict[str, Any]) -> Counter[str]:
    """How many failed traces the analyzer blames on each layer (``None`` when it named none)."""
    return Counter(
        str((t.get("diagnosis") or {}).get("failed_layer"))
        for t in report["traces"]
        if t["status"] == "error"
    )


def layer_p50(report: dict[str, Any]) -> dict[str, float]:
    return {layer: entry["p50_ms"] for layer, entry in report["summary"]["layers"].items()}


def pods_serving(report: dict[str, Any]) -> Counter[str]:
    """Requests per pod, from the app containers' server spans (needs ``include_spans=True``)."""
    served: Counter[str] = Counter()
    for trace in report["traces"]:
        for span in trace.get("spans", ()):
            resource = span.get("resource") or {}
            if span.get("kind") == "server" and resource.get("k8s.container.name") == "app":
                served[str(resource.get("k8s.pod.name"))] += 1
    return served


def trace_pod(trace: dict[str, Any]) -> str | None:
    """The pod whose app container served the trace (needs ``include_spans=True``)."""
    for span in trace.get("spans", ()):
        resource = span.get("resource") or {}
        if span.get("kind") == "server" and resource.get("k8s.container.name") == "app":
            return str(resource.get("k8s.pod.name"))
    return None


def _rows_by_pod(report: dict[str, Any]) -> dict[str, list[dict[str, float]]]:
    by_pod: dict[str, list[dict[str, float]]] = {}
    for trace in report["traces"]:
        pod = trace_pod(trace)
        if pod is not None and trace["status"] == "ok":
            by_pod.setdefault(pod, []).append(trace.get("layers") or {})
    return by_pod


def layer_p50_by_pod(report: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Median time per layer over each pod's successful requests (a layer a trace lacks counts 0)."""
    out: dict[str, dict[str, float]] = {}
    for pod, rows in _rows_by_pod(report).items():
        layers = {layer for row in rows for layer in row}
        out[pod] = {layer: statistics.median(row.get(layer, 0.0) for row in rows) for layer in layers}
    return out


def layer_growth(report: dict[str, Any], pod: str) -> dict[str, float]:
    """Per layer: mean ms of ``pod``'s requests minus the mean of the other pods' requests.

    How a fault on one pod's link is judged: the other pods' requests cross the same machine at the
    same time, so the busy machine's share cancels out, and the mean (not the median) counts the rare
    long waits a lost packet costs (a retransmission timeout hits few requests, but hard).
    """
    rows = _rows_by_pod(report)
    mine = rows.get(pod, [])
    others = [row for name, group in rows.items() if name != pod for row in group]
    if not mine or not others:
        return {}
    layers = {layer for row in mine + others for layer in row} - {"client"}
    return {
        layer: statistics.fmean(r.get(layer, 0.0) for r in mine)
        - statistics.fmean(r.get(layer, 0.0) for r in others)
        for layer in layers
    }


def judge(scenario: Scenario, run: DemoRun, report: dict[str, Any]) -> dict[str, Any]:
    """The verdict: which layer the analyzer blames, whether that is the injected truth, and the counts.

    Failure scenarios: the layer most failed requests are blamed on. A fault on one pod's link: the
    layer whose mean grew most on that pod's requests against the other pods' (:func:`layer_growth`).
    Other delay and baseline scenarios: the layer with the largest median time (``client`` excluded:
    it is the load generator's own time).
    """
    summary = report["summary"]
    failures = failed_layers(report)
    p50 = layer_p50(report)
    per_pod = layer_p50_by_pod(report)
    shaped = run.shaped_pod
    growth = layer_growth(report, shaped) if shaped is not None else {}
    if scenario.kind == "failure":
        blamed = failures.most_common(1)[0][0] if failures else None
    elif growth:
        # A fault on one pod's link: the layer that grew most on that pod's requests (the others are
        # the control).
        blamed = max(growth, key=lambda k: growth[k])
    else:
        candidates = {k: v for k, v in p50.items() if k != "client"}
        blamed = max(candidates, key=lambda k: candidates[k]) if candidates else None
    if scenario.expected_layer is not None:
        match: bool = blamed == scenario.expected_layer
        if scenario.kind == "failure":
            match = match and failures[scenario.expected_layer] >= 0.95 * sum(failures.values())
    else:
        match = summary["error_traces"] == 0
    statuses = run.status_counts()
    return {
        "scenario": scenario.name,
        "injected": scenario.breaks,
        "expected_layer": scenario.expected_layer,
        "blamed_layer": blamed,
        "match": match,
        "requests_sent": len(run.results),
        "responses": {str(k): v for k, v in sorted(statuses.items())},
        "traces_received": run.traces_received,
        "traces_analyzed": summary["traces"],
        "spans": summary["spans"],
        "failed_requests": summary["error_traces"],
        "failed_layers": dict(failures),
        "layer_p50_ms": {k: round(v, 3) for k, v in p50.items()},
        "pods": run.pods,
        "killed_pods": sorted({name.rsplit("-", 1)[0] for name in run.killed_pods}),
        "added_pods": run.added_pods,
        "requests_per_pod": dict(pods_serving(report)),
        "network": run.options.network,
        "pod_ips": run.pod_ips,
        "shaped_pod": shaped,
        "layer_growth_ms": {k: round(v, 3) for k, v in sorted(growth.items())},
        "shaping": run.shaping,
        "layer_p50_ms_by_pod": {
            pod: {k: round(v, 3) for k, v in layers.items()} for pod, layers in sorted(per_pod.items())
        },
        "events": [{"t_s": round(t, 3), "event": text} for t, text in run.events],
        "elapsed_s": round(run.elapsed_s, 2),
    }


def representative(scenario: Scenario, report: dict[str, Any], blamed: str | None) -> dict[str, Any] | None:
    """The trace to draw: a failure blamed on ``blamed``, else the trace closest to the median duration."""
    traces = report["traces"]
    if not traces:
        return None
    if scenario.kind == "failure":
        for trace in traces:
            if trace["status"] == "error" and (trace.get("diagnosis") or {}).get("failed_layer") == blamed:
                return trace
    median = report["summary"].get("duration", {}).get("p50_ms")
    if median is None:
        ordered = sorted(t["duration_ms"] for t in traces)
        median = ordered[len(ordered) // 2]
    ok = [t for t in traces if t["status"] == "ok"] or traces
    return min(ok, key=lambda t: abs(t["duration_ms"] - median))

"""The self-contained HTML report: one file that opens offline and shows where the time went.

``render_html(report)`` takes the analyzer's JSON contract (``analyze_paths(..., include_spans=True)``)
and returns one HTML page with the CSS, the JavaScript and the data inlined. Nothing is fetched: the
page is meant to be mailed, attached to a ticket, or opened from a CI artifact years later.

The page never receives every trace. Python does the aggregation here (flow diagram, per-layer
breakdown, failure groups, latency buckets) and embeds the aggregates plus a sample of at most
``MAX_SAMPLES`` waterfalls (the slowest, one per failure group then more failed ones, the typical ones
around the median). That keeps a 10,000-trace report small and quick to open, and keeps the browser
from drawing what nobody can read anyway.

The embedded JSON escapes ``<``, ``>``, ``&`` and the two JavaScript line separators, so a span
attribute holding ``</script>`` or ``<!--`` cannot end the data block early (pyinstrument's HTML
renderer inlines its JSON unescaped; we close that gap).
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import msgspec

from tracekit import __version__
from tracekit.analyze.model import LAYERS
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

output_file_extension = "html"
output_is_binary = False

_RESOURCES = "tracekit.analyze.renderers.html_resources"
_PLACEHOLDER = re.compile(r"\{\{(TITLE|CSS|JS|DATA)\}\}")
# Characters that may not appear raw inside <script>: "<" starts "</script>" and "<!--", the two
# separators end a JavaScript string literal in older engines. JSON parses the \u escapes back.
_SCRIPT_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def render_html(report: Mapping[str, Any], *, title: str = "tracekit report") -> str:
    """Return the whole report page for ``report`` (the analyzer's JSON contract, spans included)."""
    view = build_view(report)
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
    """Linear-interpolated percentile (``q`` in 0..100) of already *sorted* values; None if empty."""
    if not values:
        return None
    if len(values) == 1:
        return float(values[0])
    pos = (len(values) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(values) - 1)
    return float(values[low] + (values[high] - values[low]) * (pos - low))


def _stats(values: list[float]) -> dict[str, float | None]:
    values.sort()
    return {
        "p50_ms": _round(percentile(values, 50)),
        "p95_ms": _round(percentile(values, 95)),
        "p99_ms": _round(percentile(values, 99)),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


# --- the view the page draws -----------------------------------------------------------------------


def build_view(report: Mapping[str, Any]) -> dict[str, Any]:
    """Reduce the analyzer report to what the page draws: aggregates and a sample of traces."""
    traces: list[Mapping[str, Any]] = list(report.get("traces") or [])
    summary: Mapping[str, Any] = report.get("summary") or {}
    durations = sorted(float(t.get("duration_ms") or 0.0) for t in traces)
    samples = select_samples(traces)
    resources: dict[str, tuple[int, dict[str, Any]]] = {}
    return {
        "meta": {
            "tracekit_version": __version__,
            "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        },
        "layers": list(LAYERS),
        "summary": {
            "traces": summary.get("traces", len(traces)),
            "spans": summary.get("spans", sum(len(t.get("spans") or ()) for t in traces)),
            "error_traces": summary.get("error_traces", sum(1 for t in traces if t.get("status") == "error")),
            "layers": summary.get("layers") or {},
            "duration": {
                **_stats(list(durations)),
                "mean_ms": _round(sum(durations) / len(durations)) if durations else None,
                **(summary.get("duration") or {}),
                "max_ms": _round(durations[-1]) if durations else None,
            },
            "routes": summary.get("routes") or {},
        },
        "buckets": latency_buckets(traces, durations),
        "histogram": duration_histogram(traces),
        "flow": build_flow(traces),
        "failures": failure_groups(traces),
        "samples": [_sample(t, why, resources) for t, why in samples],
        # Spans of one process share their resource; each sampled span points into this table.
        "resources": [resource for _, resource in resources.values()],
        "warnings": _warnings(report, traces),
    }


def latency_buckets(traces: Sequence[Mapping[str, Any]], durations: Sequence[float]) -> list[dict[str, Any]]:
    """Mean per-layer time of the traces in each latency band: where does the tail's time go?"""
    if not traces:
        return []
    p50, p95, p99 = (percentile(durations, q) or 0.0 for q in (50, 95, 99))
    bands = [
        ("typical (≤ p50)", -math.inf, p50),
        ("p50 \u2013 p95", p50, p95),
        ("p95 \u2013 p99", p95, p99),
        ("tail (> p99)", p99, math.inf),
    ]
    out = []
    for label, low, high in bands:
        members = [t for t in traces if low < float(t.get("duration_ms") or 0.0) <= high]
        if not members:
            continue
        sums: dict[str, float] = defaultdict(float)
        for t in members:
            for layer, ms in (t.get("layers") or {}).items():
                sums[layer] += float(ms or 0.0)
        out.append(
            {
                "label": label,
                "count": len(members),
                "layers": {layer: round(sums[layer] / len(members), 3) for layer in LAYERS if sums[layer]},
            }
        )
    return out


def duration_histogram(traces: Sequence[Mapping[str, Any]], bins: int = 40) -> dict[str, Any]:
    """End-to-end durations in ``bins`` equal bins (ok and error counted apart), for the overview."""
    if not traces:
        return {"min_ms": 0, "max_ms": 0, "ok": [], "error": []}
    values = [float(t.get("duration_ms") or 0.0) for t in traces]
    low, high = min(values), max(values)
    width = (high - low) / bins or 1.0
    ok, err = [0] * bins, [0] * bins
    for t, v in zip(traces, values, strict=True):
        i = min(int((v - low) / width), bins - 1)
        (err if t.get("status") == "error" else ok)[i] += 1
    return {"min_ms": round(low, 3), "max_ms": round(high, 3), "ok": ok, "error": err}


def failure_groups(traces: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Failed traces grouped by (failed layer, reason), biggest group first."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for t in traces:
        diagnosis = t.get("diagnosis") or {}
        if t.get("status") != "error" and not diagnosis.get("failed_layer"):
            continue
        layer = diagnosis.get("failed_layer") or "unknown"
        # The diagnosis "kind" (db-error, no-endpoints, ...) groups; the reason text names spans and varies.
        kind = diagnosis.get("kind") or diagnosis.get("reason") or "error"
        groups[(layer, kind)].append(t)
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), _layer_index(kv[0][0]), kv[0][1]))
    return [
        {
            "layer": layer,
            "kind": kind,
            "reason": (members[0].get("diagnosis") or {}).get("reason") or kind,
            "count": len(members),
            "p50_ms": _round(percentile(sorted(float(t.get("duration_ms") or 0) for t in members), 50)),
            "examples": [t.get("trace_id") for t in members[:FAILURE_EXAMPLES]],
        }
        for (layer, kind), members in ordered
    ]


def select_samples(traces: Sequence[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], list[str]]]:
    """Pick at most MAX_SAMPLES traces worth a waterfall, each with why it was picked."""
    why: dict[str, list[str]] = defaultdict(list)
    order: list[str] = []
    by_id = {t.get("trace_id"): t for t in traces}

    def take(trace: Mapping[str, Any], reason: str) -> None:
        tid = trace.get("trace_id")
        if tid not in why:
            if len(order) >= MAX_SAMPLES:
                return
            order.append(tid)
        if reason not in why[tid]:
            why[tid].append(reason)

    def duration(t: Mapping[str, Any]) -> float:
        return float(t.get("duration_ms") or 0.0)

    if len(traces) <= MAX_SAMPLES:
        for t in traces:
            take(t, "sampled")
    # Small inputs embed every trace; then the tags only point out the few that stand out.
    few = max(1, min(SLOWEST_SAMPLES, len(traces) // 10))
    slowest = sorted(traces, key=duration, reverse=True)[:few]
    failed = [t for t in traces if t.get("status") == "error"]
    # One example per failure group first, so a rare failure is not crowded out by a common one.
    seen_groups: set[tuple[Any, Any]] = set()
    failed_pick: list[Mapping[str, Any]] = []
    for t in sorted(failed, key=duration, reverse=True):
        d = t.get("diagnosis") or {}
        key = (d.get("failed_layer"), d.get("reason"))
        if key not in seen_groups:
            seen_groups.add(key)
            failed_pick.append(t)
    failed_pick += [t for t in sorted(failed, key=duration, reverse=True) if t not in failed_pick]
    ranked = sorted(traces, key=duration)
    typical: list[Mapping[str, Any]] = []
    if ranked:
        mid = (len(ranked) - 1) // 2
        n_typical = max(1, min(TYPICAL_SAMPLES, len(traces) // 10))
        lo = max(0, mid - n_typical // 2)
        typical = [t for t in ranked[lo : lo + n_typical] if t.get("status") != "error"]
    for t in slowest:
        take(t, "slowest")
    for t in failed_pick[:FAILED_SAMPLES]:
        take(t, "failed")
    for t in typical:
        take(t, "typical")
    for t in traces:  # small inputs: every trace (already taken above) keeps its tags
        if len(order) >= MAX_SAMPLES:
            break
        take(t, "sampled")
    return [(by_id[tid], [w for w in why[tid] if w != "sampled"] or ["sampled"]) for tid in order]


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
        if isinstance(out.get(key), float):
            out[key] = round(out[key], 4)
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


def _warnings(report: Mapping[str, Any], traces: Sequence[Mapping[str, Any]]) -> list[str]:
    counts = Counter(w for t in traces for w in t.get("warnings") or ())
    out = [str(w) for w in report.get("warnings") or ()]
    out += [f"{w} ({n} traces)" if n > 1 else w for w, n in counts.most_common(20)]
    return out


def _layer_index(layer: str | None) -> int:
    return LAYERS.index(layer) if layer in LAYERS else len(LAYERS)


# --- the request flow diagram ----------------------------------------------------------------------


class _Acc:
    """Counts, errors and latencies of one node or edge of the flow diagram."""

    __slots__ = ("count", "errors", "latencies", "layers", "net")

    def __init__(self) -> None:
        self.count = 0
        self.errors = 0
        self.latencies: list[float] = []
        self.net: list[float] = []
        self.layers: Counter[str] = Counter()

    def add(self, latency: float, error: bool, layer: str | None = None, net: float | None = None) -> None:
        self.count += 1
        self.errors += int(error)
        self.latencies.append(latency)
        if net is not None:
            self.net.append(net)
        if layer:
            self.layers[layer] += 1

    def stats(self) -> dict[str, Any]:
        self.latencies.sort()
        self.net.sort()
        out = {
            "count": self.count,
            "errors": self.errors,
            "p50_ms": _round(percentile(self.latencies, 50)),
            "p95_ms": _round(percentile(self.latencies, 95)),
        }
        if self.net:
            out["net_p50_ms"] = _round(percentile(self.net, 50))
            out["net_p95_ms"] = _round(percentile(self.net, 95))
        return out


def _get(span: Mapping[str, Any], key: str) -> Any:
    attrs = span.get("attributes") or {}
    value = attrs.get(key)
    if value is None:
        value = (span.get("resource") or {}).get(key)
    return value


def build_flow(traces: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The request flow diagram, derived from parent->child span relations across all traces.

    A node is one process (service + pod + container); a call between two nodes is an edge. A CLIENT
    span whose callee sent no span ends at a virtual node: the database (``db.system``), the Service
    that had no pod to send to, or an external peer. The ingress's upstream call is drawn through a
    virtual Kubernetes Service node, so the fan-out to the pod replicas shows as in the cluster.
    Edge latency is the caller's view of the call; ``net`` is the part the callee's server span does
    not cover (network, kube-proxy, queueing). Traces without spans fall back to their hops.
    """
    traces = list(traces)
    shown_pod = _fold_replicas(traces)
    nodes: dict[str, _Acc] = defaultdict(_Acc)
    info: dict[str, dict[str, Any]] = {}
    edges: dict[tuple[str, str], _Acc] = defaultdict(_Acc)

    def node_of(span: Mapping[str, Any]) -> str:
        service = str(span.get("service") or "unknown")
        pod = _get(span, K8S_POD_NAME)
        pod = shown_pod.get(pod, pod)
        container = _get(span, K8S_CONTAINER_NAME)
        key = f"p|{service}|{pod or ''}|{container or ''}"
        if key not in info:
            info[key] = {
                "id": key,
                "label": service,
                "kind": "process",
                "pod": pod,
                "container": container,
                "namespace": _get(span, K8S_NAMESPACE_NAME),
                "node": _get(span, K8S_NODE_NAME),
            }
        return key

    def virtual(key: str, label: str, layer: str, kind: str, **extra: Any) -> str:
        if key not in info:
            info[key] = {"id": key, "label": label, "kind": kind, "fixed_layer": layer, **extra}
        return key

    for trace in traces:
        spans = trace.get("spans") or ()
        if not spans:
            _flow_from_hops(trace, nodes, info, edges)
            continue
        by_id = {s.get("span_id"): s for s in spans}
        children: dict[Any, list[Mapping[str, Any]]] = defaultdict(list)
        for s in spans:
            children[s.get("parent_id")].append(s)
        service_name = next(
            (v for s in spans if (v := s.get("attributes", {}).get(BACKEND_SERVICE_NAME))), None
        )
        node_ids = {s.get("span_id"): node_of(s) for s in spans}
        for s in spans:
            sid, me = s.get("span_id"), node_ids[s.get("span_id")]
            duration = float(s.get("duration_ms") or 0.0)
            error = s.get("status") == "error"
            parent = by_id.get(s.get("parent_id"))
            if parent is None or node_ids[parent.get("span_id")] != me:
                # "span_layer" is what the span is (the processors' classification); "layer" is where its
                # own time went (a client's span is "edge" time), so boxes go by the former.
                nodes[me].add(duration, error, s.get("span_layer") or s.get("layer"))
            remote = [c for c in children.get(sid, ()) if node_ids[c.get("span_id")] != me]
            if s.get("kind") != "client":
                # A span calling another process without a CLIENT span (ingress-nginx's single span).
                for c in remote:
                    edges[(me, node_ids[c.get("span_id")])].add(
                        float(c.get("duration_ms") or 0.0), c.get("status") == "error"
                    )
                continue
            covered = _covered(s, remote)
            net = max(0.0, duration - covered)
            layer = s.get("layer")
            through_service = layer == "service" or (
                remote
                and _get(s, K8S_POD_NAME) is None
                and layer == "ingress"
                and _get(remote[0], K8S_POD_NAME)
            )
            if through_service:
                name = s.get("attributes", {}).get(BACKEND_SERVICE_NAME) or service_name or "Service"
                svc = virtual(f"s|{name}", str(name), "service", "k8s-service")
                edges[(me, svc)].add(duration, error)
                nodes[svc].add(net, error and not remote, "service")
                for c in remote:
                    c_dur = float(c.get("duration_ms") or 0.0)
                    edges[(svc, node_ids[c.get("span_id")])].add(c_dur, c.get("status") == "error", net=net)
                continue
            if remote:
                for c in remote:
                    edges[(me, node_ids[c.get("span_id")])].add(duration, error, net=net)
                continue
            # Nobody answered with a span: the callee is the database, an external peer, or unknown.
            db_system = _get(s, "db.system.name") or _get(s, "db.system")
            if db_system or layer == "db":
                label = str(db_system or "database")
                where = _get(s, K8S_POD_NAME) or s.get("service")
                # The database lives in the pod of the container that opens it (SQLite is a file there).
                pod = shown_pod.get(_get(s, K8S_POD_NAME), _get(s, K8S_POD_NAME))
                target = virtual(f"d|{label}|{pod or where}", label, "db", "database", pod=pod)
            else:
                peer = (
                    _get(s, "server.address")
                    or _get(s, "net.peer.name")
                    or _get(s, "http.host")
                    or _get(s, "peer.service")
                    or s.get("name")
                )
                target = virtual(f"e|{peer}", str(peer), layer or "external", "external")
            edges[(me, target)].add(duration, error)
            nodes[target].add(duration, error, layer)

    out_nodes = []
    for key, meta in info.items():
        acc = nodes.get(key) or _Acc()
        layer = meta.pop("fixed_layer", None) or (
            acc.layers.most_common(1)[0][0] if acc.layers else "unknown"
        )
        out_nodes.append({**meta, "layer": layer, **acc.stats()})
    out_nodes.sort(key=lambda n: (_layer_index(n["layer"]), str(n.get("pod") or ""), n["label"]))
    out_edges = [{"from": a, "to": b, **acc.stats()} for (a, b), acc in edges.items()]
    return {"nodes": out_nodes, "edges": out_edges, "folded_pods": sorted(set(shown_pod.values()))}


def _fold_replicas(traces: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Map pod names to the name drawn: the busiest MAX_PODS_SHOWN replicas of a workload stand alone,
    the rest fold into one "N more pods" box, so 30 replicas do not make a diagram nobody can read."""
    counts: Counter[str] = Counter()
    workload: dict[str, str] = {}
    for trace in traces:
        for s in trace.get("spans") or ():
            pod = _get(s, K8S_POD_NAME)
            if pod:
                counts[pod] += 1
                if pod not in workload:
                    workload[pod] = str(
                        _get(s, K8S_DEPLOYMENT_NAME)
                        or _get(s, K8S_STATEFULSET_NAME)
                        or _get(s, K8S_DAEMONSET_NAME)
                        or re.sub(r"-[a-z0-9]{1,10}$", "", str(pod))
                    )
    by_workload: dict[str, list[str]] = defaultdict(list)
    for pod, name in workload.items():
        by_workload[name].append(pod)
    out: dict[str, str] = {}
    for name, pods in by_workload.items():
        if len(pods) <= MAX_PODS_SHOWN + 1:
            continue
        pods.sort(key=lambda p: (-counts[p], p))
        rest = pods[MAX_PODS_SHOWN:]
        for pod in rest:
            out[pod] = f"{name}: {len(rest)} more pods"
    return out


def _covered(span: Mapping[str, Any], children: Sequence[Mapping[str, Any]]) -> float:
    """Milliseconds of ``span`` covered by the union of its children's intervals."""
    start = float(span.get("start_ms") or 0.0)
    end = start + float(span.get("duration_ms") or 0.0)
    intervals = sorted(
        (
            max(start, float(c.get("start_ms") or 0.0)),
            min(end, float(c.get("start_ms") or 0.0) + float(c.get("duration_ms") or 0.0)),
        )
        for c in children
    )
    total, cur_start, cur_end = 0.0, None, None
    for a, b in intervals:
        if b <= a:
            continue
        if cur_end is None or a > cur_end:
            if cur_end is not None:
                total += cur_end - cur_start
            cur_start, cur_end = a, b
        else:
            cur_end = max(cur_end, b)
    if cur_end is not None:
        total += cur_end - cur_start
    return total


def _flow_from_hops(
    trace: Mapping[str, Any],
    nodes: dict[str, _Acc],
    info: dict[str, dict[str, Any]],
    edges: dict[tuple[str, str], _Acc],
) -> None:
    """Without spans, chain the hops in path order: one node per (layer, service, pod)."""
    previous = None
    for hop in trace.get("hops") or ():
        k8s = hop.get("k8s") or {}
        pod = k8s.get(K8S_POD_NAME) or k8s.get("pod")
        key = f"h|{hop.get('layer')}|{hop.get('service')}|{pod or ''}"
        if key not in info:
            info[key] = {
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
        nodes[key].add(float(hop.get("duration_ms") or 0.0), error, hop.get("layer"))
        if previous is not None and previous != key:
            edges[(previous, key)].add(float(hop.get("duration_ms") or 0.0), error)
        previous = key

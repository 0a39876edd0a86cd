"""Known request paths for the report tests: client -> ingress -> app -> sidecar -> db, with known times.

One spec builds both the OTLP JSON input (``tests/analyze/renderers/data/shop.otlp.json``, regenerate with
``python -m tests.analyze.renderers.shopdata``) and a hand-written analyzer report with the attribution worked
out by hand from docs/design.md, so the page can be tested before (and independently of) the processors.

Per OK trace at scale 1 (ms): loadgen CLIENT 0-40, ingress SERVER 2-38, ingress CLIENT 3-37,
app SERVER 5-35, app CLIENT 10-30, sidecar SERVER 11-29, sqlite CLIENT 13-27. Layers: edge 4,
ingress 2, service 4, app 10, sidecar 2+4, db 14 = 40.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"
OTLP_FILE = DATA / "shop.otlp.json"
BASE_NS = 1_763_800_000_000_000_000
#: A span attribute that would end a <script> element if the page embedded it unescaped.
HOSTILE_SQL = "SELECT * FROM products WHERE note = '</script><script>window.__pwned=1</script>'"

PODS = ("shop-7d9f8c6b5-abcde", "shop-7d9f8c6b5-fghij")


def _pod_resource(pod: str, container: str, service: str) -> dict[str, Any]:
    return {
        "service.name": service,
        "k8s.namespace.name": "shop",
        "k8s.pod.name": pod,
        "k8s.pod.uid": f"uid-{pod}",
        "k8s.node.name": "node-1" if pod.endswith("abcde") else "node-2",
        "k8s.container.name": container,
        "k8s.deployment.name": "shop",
    }


CLIENT_RES = {"service.name": "loadgen"}
INGRESS_RES = {"service.name": "ingress"}


def _ok_trace(n: int, scale: float, pod: str, fail_db: bool = False) -> dict[str, Any]:
    def t(ms: float) -> float:
        return ms * scale

    err = "error" if fail_db else "ok"
    app_res = _pod_resource(pod, "app", "shop")
    db_res = _pod_resource(pod, "db", "shop-db")
    code = 500 if fail_db else 200
    spans = [
        # id, parent, name, kind, start, end, resource, attrs, status, message
        (
            "c",
            None,
            "GET /api/products",
            "client",
            0,
            40,
            CLIENT_RES,
            {
                "tracekit.component": "client",
                "http.request.method": "GET",
                "url.full": "http://shop.example.com/api/products",
                "http.response.status_code": code,
            },
            err,
            "",
        ),
        (
            "is",
            "c",
            "GET /api/products",
            "server",
            2,
            38,
            INGRESS_RES,
            {
                "tracekit.component": "ingress",
                "tracekit.ingress.name": "shop",
                "tracekit.ingress.rule.host": "shop.example.com",
                "tracekit.ingress.rule.path": "/",
                "tracekit.service.name": "web-service",
                "tracekit.service.port": 80,
                "http.response.status_code": code,
            },
            err,
            "",
        ),
        (
            "ic",
            "is",
            "GET",
            "client",
            3,
            37,
            INGRESS_RES,
            {
                "tracekit.component": "ingress",
                "tracekit.service.name": "web-service",
                "server.address": "10.0.0.12",
                "http.response.status_code": code,
            },
            err,
            "",
        ),
        (
            "as",
            "ic",
            "GET /api/products",
            "server",
            5,
            35,
            app_res,
            {"http.route": "/api/products", "http.response.status_code": code},
            err,
            "OperationalError: no such table: products" if fail_db else "",
        ),
        (
            "ac",
            "as",
            "POST /query",
            "client",
            10,
            30,
            app_res,
            {"server.address": "127.0.0.1", "server.port": 9090, "http.response.status_code": code},
            err,
            "",
        ),
        ("ss", "ac", "POST /query", "server", 11, 29, db_res, {"http.route": "/query"}, err, ""),
        (
            "q",
            "ss",
            "SELECT products",
            "client",
            13,
            27,
            db_res,
            {"db.system": "sqlite", "db.system.name": "sqlite", "db.query.text": HOSTILE_SQL},
            err,
            "no such table: products" if fail_db else "",
        ),
    ]
    layers = {"edge": 4, "ingress": 2, "service": 4, "app": 10, "sidecar": 6, "db": 14}
    layer_of = {
        "c": "client",
        "is": "ingress",
        "ic": "service",
        "as": "app",
        "ac": "sidecar",
        "ss": "sidecar",
        "q": "db",
    }
    diagnosis = (
        {"failed_layer": "db", "reason": "database error: no such table: products", "span_id": _sid(n, "q")}
        if fail_db
        else {"failed_layer": None, "reason": "", "span_id": None}
    )
    return _trace(n, spans, {k: v * scale for k, v in layers.items()}, layer_of, diagnosis, t)


def _503_trace(n: int) -> dict[str, Any]:
    spans = [
        (
            "c",
            None,
            "GET /api/products",
            "client",
            0,
            12,
            CLIENT_RES,
            {"tracekit.component": "client", "http.response.status_code": 503},
            "error",
            "",
        ),
        (
            "is",
            "c",
            "GET /api/products",
            "server",
            1,
            11,
            INGRESS_RES,
            {
                "tracekit.component": "ingress",
                "tracekit.service.name": "web-service",
                "http.response.status_code": 503,
            },
            "error",
            "",
        ),
        (
            "ic",
            "is",
            "GET",
            "client",
            2,
            10,
            INGRESS_RES,
            {
                "tracekit.component": "ingress",
                "tracekit.service.name": "web-service",
                "http.response.status_code": 503,
                "error.type": "503",
            },
            "error",
            "no ready endpoints",
        ),
    ]
    layers = {"edge": 2, "ingress": 2, "service": 8}
    layer_of = {"c": "client", "is": "ingress", "ic": "service"}
    diagnosis = {
        "failed_layer": "service",
        "reason": "HTTP 503 from the Service: no pod answered",
        "span_id": _sid(n, "ic"),
    }
    return _trace(n, spans, layers, layer_of, diagnosis, lambda ms: ms)


def _tid(n: int) -> str:
    return f"{n + 1:032x}".replace("0", "a", 4)


def _sid(n: int, key: str) -> str:
    return (f"{n + 1:04x}" + key.encode().hex()).ljust(16, "0")[:16]


def _trace(n, spans, layers, layer_of, diagnosis, t) -> dict[str, Any]:
    critical = {"c", "is", "ic", "as", "ac", "ss", "q"}
    out_spans = []
    for key, parent, name, kind, start, end, res, attrs, status, message in spans:
        out_spans.append(
            {
                "span_id": _sid(n, key),
                "parent_id": _sid(n, parent) if parent else None,
                "name": name,
                "service": res["service.name"],
                "layer": layer_of[key],
                "kind": kind,
                "start_ms": round(t(start), 6),
                "duration_ms": round(t(end) - t(start), 6),
                "status": status,
                "status_message": message,
                "critical": key in critical,
                "attributes": dict(attrs),
                "resource": dict(res),
            }
        )
    duration = out_spans[0]["duration_ms"]
    status = "error" if diagnosis["failed_layer"] else "ok"
    return {
        "trace_id": _tid(n),
        "duration_ms": duration,
        "status": status,
        "layers": {k: round(v, 6) for k, v in layers.items()},
        "hops": [
            {
                "layer": s["layer"],
                "service": s["service"],
                "name": s["name"],
                "span_id": s["span_id"],
                "start_ms": s["start_ms"],
                "duration_ms": s["duration_ms"],
                "self_ms": 0.0,
                "k8s": {k: v for k, v in s["resource"].items() if k.startswith("k8s.")},
            }
            for s in out_spans
        ],
        "diagnosis": diagnosis,
        "warnings": [],
        "spans": out_spans,
    }


#: (kind, scale, pod) of every trace, in file order.
SPEC = [
    ("ok", 1.0, PODS[0]),
    ("ok", 1.2, PODS[1]),
    ("ok", 0.8, PODS[0]),
    ("ok", 1.5, PODS[1]),
    ("ok", 3.0, PODS[0]),
    ("db", 1.0, PODS[1]),
    ("503", 1.0, None),
]


def handmade_traces() -> list[dict[str, Any]]:
    out = []
    for n, (kind, scale, pod) in enumerate(SPEC):
        if kind == "503":
            out.append(_503_trace(n))
        else:
            out.append(_ok_trace(n, scale, pod, fail_db=kind == "db"))
    return out


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    pos = (len(values) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


def report_from_traces(traces: list[dict[str, Any]]) -> dict[str, Any]:
    """Wrap traces in the JSON contract's summary (docs/design.md) (the way the processors define it)."""
    total = sum(t["duration_ms"] for t in traces)
    layers: dict[str, Any] = {}
    for layer in ("client", "edge", "ingress", "service", "app", "sidecar", "db", "external", "unknown"):
        values = [t["layers"].get(layer, 0.0) for t in traces]
        if not any(values):
            continue
        layers[layer] = {
            "mean_ms": sum(values) / len(values),
            "p50_ms": _pct(values, 50),
            "p95_ms": _pct(values, 95),
            "p99_ms": _pct(values, 99),
            "share": sum(values) / total if total else 0.0,
        }
    return {
        "summary": {
            "traces": len(traces),
            "spans": sum(len(t["spans"]) for t in traces),
            "error_traces": sum(1 for t in traces if t["status"] == "error"),
            "layers": layers,
        },
        "traces": traces,
    }


def handmade_report() -> dict[str, Any]:
    return report_from_traces(handmade_traces())


# --- OTLP JSON ----------------------------------------------------------------------------------------

_KIND = {"internal": 1, "server": 2, "client": 3}
_STATUS = {"ok": 0, "error": 2}


def _any(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": str(value)}


def otlp_document() -> dict[str, Any]:
    """The handmade traces as one OTLP/JSON document (resourceSpans grouped by resource)."""
    groups: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    for trace in handmade_traces():
        for s in trace["spans"]:
            key = json.dumps(s["resource"], sort_keys=True)
            _res, spans = groups.setdefault(key, (s["resource"], []))
            status: dict[str, Any] = {"code": _STATUS[s["status"]]}
            if s["status_message"]:
                status["message"] = s["status_message"]
            start = BASE_NS + round(s["start_ms"] * 1_000_000)
            end = start + round(s["duration_ms"] * 1_000_000)
            span = {
                "traceId": trace["trace_id"],
                "spanId": s["span_id"],
                "name": s["name"],
                "kind": _KIND[s["kind"]],
                "startTimeUnixNano": str(start),
                "endTimeUnixNano": str(end),
                "attributes": [{"key": k, "value": _any(v)} for k, v in s["attributes"].items()],
                "status": status,
            }
            if s["parent_id"]:
                span["parentSpanId"] = s["parent_id"]
            spans.append(span)
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": k, "value": _any(v)} for k, v in res.items()]},
                "scopeSpans": [{"scope": {"name": "tests.analyze.renderers"}, "spans": spans}],
            }
            for res, spans in groups.values()
        ]
    }


def otlp_text() -> str:
    return json.dumps(otlp_document(), indent=1) + "\n"


if __name__ == "__main__":
    OTLP_FILE.write_text(otlp_text(), encoding="utf-8")
    print(f"wrote {OTLP_FILE}")

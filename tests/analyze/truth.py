"""Traces with injected ground truth, and small serialisers to OTLP JSON, Jaeger JSON and Zipkin v2.

:func:`request_trace` lays a request out along the journey (client -> ingress -> Service hop -> app
-> sidecar hop -> sidecar -> db) with per-layer times chosen by the test, and returns the spans and
the per-layer nanoseconds attribution must find. Every time is on a microsecond grid so the Jaeger and
Zipkin forms (microsecond timestamps) carry the same truth.

The serialisers are written here, independently of the readers, so the round trip exercises them.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracekit import attributes as a
from tracekit.analyze.model import Event, RefType, Span, SpanKind, StatusCode, Trace

US = 1_000
MS = 1_000_000
T0 = 1_763_800_000_000_000_000  # 2025-11-22, in ns

CLIENT_RES = {a.SERVICE_NAME: "loadgen"}
INGRESS_RES = {
    a.SERVICE_NAME: "ingress",
    a.K8S_NAMESPACE_NAME: "ingress",
    a.K8S_POD_NAME: "ingress-7d9f-abcde",
    a.K8S_POD_UID: "uid-ingress",
    a.K8S_NODE_NAME: "node-1",
    a.K8S_CONTAINER_NAME: "controller",
}
APP_RES = {
    a.SERVICE_NAME: "shop",
    a.K8S_NAMESPACE_NAME: "shop",
    a.K8S_POD_NAME: "shop-5c6b-xyz12",
    a.K8S_POD_UID: "uid-shop",
    a.K8S_NODE_NAME: "node-2",
    a.K8S_CONTAINER_NAME: "app",
}
SIDECAR_RES = {**APP_RES, a.SERVICE_NAME: "shop-db", a.K8S_CONTAINER_NAME: "db"}


class Ids:
    """Deterministic span ids."""

    def __init__(self, seed: int = 1) -> None:
        self._n = itertools.count(seed << 20)

    def __call__(self) -> str:
        return f"{next(self._n):016x}"


@dataclass
class Layout:
    """Per-layer times (µs) of one request: (before, after) the inner span, as the request flows."""

    edge: tuple[int, int] = (3000, 2000)
    ingress: tuple[int, int] = (400, 300)
    service: tuple[int, int] = (250, 150)
    app: tuple[int, int] = (5000, 1000)
    sidecar_hop: tuple[int, int] = (80, 40)
    sidecar: tuple[int, int] = (300, 200)
    db: list[int] = field(default_factory=lambda: [700, 1200])
    #: Gap inside the sidecar between db statements (µs), counted to the sidecar.
    db_gap: int = 50
    #: Time the client spends in its own INTERNAL root around the call (µs, before/after); None: no root.
    client_self: tuple[int, int] | None = None


@dataclass
class Built:
    """A generated trace: its spans, the truth (layer -> ns) and the expected diagnosis layer."""

    trace_id: str
    spans: list[Span]
    truth: dict[str, int]
    failed_layer: str | None = None

    @property
    def duration(self) -> int:
        return sum(self.truth.values())

    def trace(self) -> Trace:
        return Trace(self.trace_id, list(self.spans))


def _span(
    tid: str,
    sid: str,
    parent: str | None,
    name: str,
    kind: SpanKind,
    start: int,
    end: int,
    res: dict[str, Any],
    attrs: dict[str, Any] | None = None,
    **kw: Any,
) -> Span:
    return Span(
        trace_id=tid,
        span_id=sid,
        parent_id=parent,
        name=name,
        kind=kind,
        start_ns=start,
        end_ns=end,
        service=res[a.SERVICE_NAME],
        attributes=attrs or {},
        resource=res,
        **kw,
    )


def request_trace(
    n: int = 1,
    layout: Layout | None = None,
    *,
    failure: str | None = None,
    skew_node: str | None = None,
    skew_us: int = 0,
    missing: frozenset[str] = frozenset(),
    fanout: int = 0,
    follows_from: bool = False,
    zero_length: bool = False,
    deep: int = 0,
    start: int | None = None,
) -> Built:
    """Lay out one request (see the module docstring) and return it with its truth.

    :param failure: inject a failure: ``edge`` (DNS error, nothing reached the cluster),
        ``ingress`` (404, no rule), ``service`` (503, connection refused, no pod span), ``app``
        (exception), ``sidecar`` (sidecar raised), ``db`` (statement failed), ``envoy`` (Envoy UH).
    :param skew_node: shift every span on this node (``node-1`` ingress, ``node-2`` app pod) by
        ``skew_us``; the truth does not change (the analyzer must undo it).
    :param missing: span roles the exporters lost: ``"client"`` (root), ``"sidecar"`` (sidecar
        SERVER span). The truth follows what the remaining spans can tell.
    :param fanout: extra parallel external calls from the app (staggered; see :func:`_fanout`).
    :param follows_from: the app starts an async FOLLOWS_FROM child that outlives the request.
    :param zero_length: sprinkle zero-length spans in the app and the sidecar.
    :param deep: a chain of this many nested INTERNAL spans inside the app's first segment.
    """
    L = layout or Layout()
    tid = f"{n:032x}"
    ids = Ids(n)
    t = start if start is not None else T0 + n * 10 * MS * 100
    spans: list[Span] = []
    truth: dict[str, int] = {}

    def add(layer: str, us: int) -> None:
        if us:
            truth[layer] = truth.get(layer, 0) + us * US

    # Layout in µs offsets from t, then ns.
    root_id = ids() if L.client_self else None
    client_id = ids()
    c_start = t + (L.client_self[0] * US if L.client_self else 0)

    if failure == "edge":
        c_end = c_start + L.edge[0] * US
        spans.append(
            _span(
                tid,
                client_id,
                root_id,
                "GET",
                SpanKind.CLIENT,
                c_start,
                c_end,
                CLIENT_RES,
                {
                    a.COMPONENT: "client",
                    "http.request.method": "GET",
                    "url.full": "http://shop.example.com/api/items",
                    "error.type": "NameResolutionError",
                },
                status=StatusCode.ERROR,
                status_message="DNS lookup failed for shop.example.com",
                events=(
                    Event(
                        "exception",
                        c_end,
                        {
                            "exception.type": "ConnectionError",
                            "exception.message": "Name or service not known",
                        },
                    ),
                ),
            )
        )
        add("edge", L.edge[0])
        return _finish(tid, spans, truth, L, t, c_start, c_end, root_id, "edge")

    # Ingress.
    i_srv, i_cli = ids(), ids()
    i_start = c_start + L.edge[0] * US
    u_start = i_start + L.ingress[0] * US
    add("edge", sum(L.edge))
    add("ingress", sum(L.ingress))
    status = 200
    upstream: list[Span] = []
    if failure == "ingress":
        status = 404
        u_end = u_start  # no upstream call at all
    elif failure in ("service", "envoy"):
        status = 503
        u_end = u_start + L.service[0] * US
        add("service", L.service[0])
        if failure == "service":
            upstream.append(
                _span(
                    tid,
                    i_cli,
                    i_srv,
                    "upstream",
                    SpanKind.CLIENT,
                    u_start,
                    u_end,
                    INGRESS_RES,
                    {
                        a.COMPONENT: "ingress",
                        "server.address": "web-service.shop.svc.cluster.local",
                        "error.type": "ConnectionRefusedError",
                    },
                    status=StatusCode.ERROR,
                    status_message="connection refused",
                )
            )
        else:
            upstream.append(
                _span(
                    tid,
                    i_cli,
                    i_srv,
                    "router web egress",
                    SpanKind.CLIENT,
                    u_start,
                    u_end,
                    INGRESS_RES,
                    {
                        "component": "proxy",
                        "upstream_cluster": "web",
                        "response_flags": "UH",
                        "http.status_code": 503,
                    },
                )
            )
    else:
        app_spans, app_end, app_failed = _app(
            tid,
            ids,
            i_cli,
            u_start + L.service[0] * US,
            L,
            add,
            failure=failure,
            missing=missing,
            fanout=fanout,
            follows_from=follows_from,
            zero_length=zero_length,
            deep=deep,
        )
        u_end = app_end + L.service[1] * US
        add("service", sum(L.service))
        if app_failed:
            status = 500
        upstream.append(
            _span(
                tid,
                i_cli,
                i_srv,
                "upstream",
                SpanKind.CLIENT,
                u_start,
                u_end,
                INGRESS_RES,
                {
                    a.COMPONENT: "ingress",
                    "server.address": "web-service.shop.svc.cluster.local",
                    "http.response.status_code": status,
                },
                status=StatusCode.ERROR if status >= 500 else StatusCode.UNSET,
            )
        )
        upstream.extend(app_spans)
    i_end = u_end + L.ingress[1] * US
    spans.append(
        _span(
            tid,
            i_srv,
            client_id,
            "GET /api/items",
            SpanKind.SERVER,
            i_start,
            i_end,
            INGRESS_RES,
            {
                a.COMPONENT: "ingress",
                "http.request.method": "GET",
                "url.path": "/api/items",
                "http.response.status_code": status,
                a.INGRESS_NAME: "shop",
            },
            status=StatusCode.ERROR if status >= 500 else StatusCode.UNSET,
        )
    )
    spans.extend(upstream)
    c_end = i_end + L.edge[1] * US
    if "client" not in missing:
        spans.insert(
            0,
            _span(
                tid,
                client_id,
                root_id,
                "GET",
                SpanKind.CLIENT,
                c_start,
                c_end,
                CLIENT_RES,
                {
                    a.COMPONENT: "client",
                    "http.request.method": "GET",
                    "url.full": "http://shop.example.com/api/items",
                    "http.response.status_code": status,
                },
                status=StatusCode.ERROR if status >= 400 else StatusCode.UNSET,
            ),
        )
    else:
        truth.pop("edge", None)
    expected = {
        None: None,
        "ingress": "ingress",
        "service": "service",
        "envoy": "service",
        "app": "app",
        "sidecar": "sidecar",
        "db": "db",
    }[failure]
    built = _finish(
        tid, spans, truth, L, t, c_start, c_end, root_id, expected, client_missing="client" in missing
    )
    if skew_node:
        built.spans = [
            _shift(s, skew_us * US) if s.resource.get(a.K8S_NODE_NAME) == skew_node else s
            for s in built.spans
        ]
    return built


def _shift(span: Span, delta: int) -> Span:
    import msgspec

    events = tuple(msgspec.structs.replace(e, time_ns=e.time_ns + delta) for e in span.events)
    return msgspec.structs.replace(
        span, start_ns=span.start_ns + delta, end_ns=span.end_ns + delta, events=events
    )


def _finish(
    tid: str,
    spans: list[Span],
    truth: dict[str, int],
    L: Layout,
    t: int,
    c_start: int,
    c_end: int,
    root_id: str | None,
    failed_layer: str | None,
    client_missing: bool = False,
) -> Built:
    if L.client_self and not client_missing:
        assert root_id is not None
        end = c_end + L.client_self[1] * US
        spans.insert(
            0,
            _span(
                tid,
                root_id,
                None,
                "checkout journey",
                SpanKind.INTERNAL,
                t,
                end,
                CLIENT_RES,
                {a.COMPONENT: "client"},
            ),
        )
        truth["client"] = truth.get("client", 0) + sum(L.client_self) * US
    return Built(tid, spans, truth, failed_layer)


def _app(
    tid: str,
    ids: Ids,
    parent: str,
    s_start: int,
    L: Layout,
    add: Any,
    *,
    failure: str | None,
    missing: frozenset[str],
    fanout: int,
    follows_from: bool,
    zero_length: bool,
    deep: int,
) -> tuple[list[Span], int, bool]:
    """The pod: app SERVER span, its call to the sidecar, the sidecar and its statements."""
    spans: list[Span] = []
    app_id = ids()
    t = s_start + L.app[0] * US
    add("app", sum(L.app))
    if deep:
        # Nested INTERNAL spans inside the app's first segment: all app time, 1 µs per level each side.
        assert L.app[0] > 2 * deep
        pid = app_id
        for level in range(deep):
            sid = ids()
            spans.append(
                _span(
                    tid,
                    sid,
                    pid,
                    f"level {level}",
                    SpanKind.INTERNAL,
                    s_start + (level + 1) * US,
                    t - (level + 1) * US,
                    APP_RES,
                )
            )
            pid = sid
    if zero_length:
        spans.append(
            _span(tid, ids(), app_id, "cache lookup", SpanKind.INTERNAL, s_start + US, s_start + US, APP_RES)
        )
        spans.append(_span(tid, ids(), app_id, "marker", SpanKind.INTERNAL, t, t, APP_RES))
    if fanout:
        t = _fanout(tid, ids, app_id, t, fanout, spans, add)
    # App -> sidecar call.
    call_id, side_id = ids(), ids()
    call_start = t
    side_start = call_start + L.sidecar_hop[0] * US
    add("sidecar", sum(L.sidecar_hop) + sum(L.sidecar) + L.db_gap * max(0, len(L.db) - 1))
    q = side_start + L.sidecar[0] * US
    db_failed = failure == "db"
    side_spans: list[Span] = []
    for i, d in enumerate(L.db):
        if i:
            q += L.db_gap * US
        err = db_failed and i == len(L.db) - 1
        side_spans.append(
            _span(
                tid,
                ids(),
                side_id,
                "SELECT shop",
                SpanKind.CLIENT,
                q,
                q + d * US,
                SIDECAR_RES,
                {"db.system": "sqlite", "db.system.name": "sqlite", "db.query.text": "SELECT * FROM items"},
                status=StatusCode.ERROR if err else StatusCode.UNSET,
                status_message="database is locked" if err else "",
                events=(
                    Event(
                        "exception",
                        q + d * US,
                        {
                            "exception.type": "sqlite3.OperationalError",
                            "exception.message": "database is locked",
                        },
                    ),
                )
                if err
                else (),
            )
        )
        if zero_length and i == 0:
            side_spans.append(
                _span(
                    tid,
                    ids(),
                    side_id,
                    "SELECT 1",
                    SpanKind.CLIENT,
                    q,
                    q,
                    SIDECAR_RES,
                    {"db.system": "sqlite"},
                )
            )
        q += d * US
        add("db", d)
    side_end = q + L.sidecar[1] * US
    side_failed = failure in ("sidecar", "db")
    side_status = 500 if side_failed else 200
    sidecar_server = _span(
        tid,
        side_id,
        call_id,
        "GET /query",
        SpanKind.SERVER,
        side_start,
        side_end,
        SIDECAR_RES,
        {"http.request.method": "GET", "http.route": "/query", "http.response.status_code": side_status},
        status=StatusCode.ERROR if side_failed else StatusCode.UNSET,
        events=(
            Event(
                "exception",
                side_end,
                {"exception.type": "RuntimeError", "exception.message": "sidecar crashed"},
            ),
        )
        if failure == "sidecar"
        else (),
    )
    call_end = side_end + L.sidecar_hop[1] * US
    spans.append(
        _span(
            tid,
            call_id,
            app_id,
            "GET",
            SpanKind.CLIENT,
            call_start,
            call_end,
            APP_RES,
            {
                "http.request.method": "GET",
                "url.full": "http://127.0.0.1:9090/query",
                "server.address": "127.0.0.1",
                "http.response.status_code": side_status,
            },
            status=StatusCode.ERROR if side_failed else StatusCode.UNSET,
        )
    )
    if "sidecar" not in missing:
        spans.append(sidecar_server)
    spans.extend(side_spans)
    app_end = call_end + L.app[1] * US
    app_failed = failure in ("app", "sidecar", "db")
    if follows_from:
        spans.append(
            _span(
                tid,
                ids(),
                app_id,
                "audit log",
                SpanKind.INTERNAL,
                t - 10 * US,
                app_end + 40 * MS,
                APP_RES,
                ref_type=RefType.FOLLOWS_FROM,
            )
        )
    spans.insert(
        0,
        _span(
            tid,
            app_id,
            parent,
            "GET /api/items",
            SpanKind.SERVER,
            s_start,
            app_end,
            APP_RES,
            {
                "http.request.method": "GET",
                "http.route": "/api/items",
                "http.response.status_code": 500 if app_failed else 200,
            },
            status=StatusCode.ERROR if app_failed else StatusCode.UNSET,
            events=(
                Event(
                    "exception",
                    app_end,
                    {"exception.type": "ZeroDivisionError", "exception.message": "division by zero"},
                ),
            )
            if failure == "app"
            else (),
        ),
    )
    return spans, app_end, app_failed


def _fanout(tid: str, ids: Ids, app_id: str, t: int, n: int, spans: list[Span], add: Any) -> int:
    """``n`` parallel external calls starting 100 µs apart; call 1 ends last.

    Call i lasts 1000 + 500*i µs for i != 1 and 5000 µs for i == 1 (the last to finish), so the
    critical path runs through call 1: it is all ``external``; the 100 µs before it started are ``app``
    (the app was busy starting call 0); the other calls are off the path. Returns the end of call 1.
    """
    last_end = 0
    for i in range(n):
        s = t + i * 100 * US
        d = 5000 if i == 1 else 1000 + 500 * i
        spans.append(
            _span(
                tid,
                ids(),
                app_id,
                f"GET partner {i}",
                SpanKind.CLIENT,
                s,
                s + d * US,
                APP_RES,
                {"http.request.method": "GET", "url.full": f"https://api.partner.example/{i}"},
            )
        )
        last_end = max(last_end, s + d * US)
    assert n >= 2
    add("app", 100)
    add("external", 5000)
    return last_end


def big_trace(n_db: int = 9_995) -> Built:
    """A 10,000-span trace: the sidecar runs ``n_db`` statements of 10 µs with 5 µs gaps."""
    layout = Layout(db=[10] * n_db, db_gap=5)
    return request_trace(77, layout)


# --- serialisers ------------------------------------------------------------------------------


def _otlp_value(v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    return {"stringValue": str(v)}


def _otlp_attrs(d: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _otlp_value(v)} for k, v in d.items()]


def to_otlp(spans: list[Span]) -> dict[str, Any]:
    """One ExportTraceServiceRequest (resourceSpans grouped by resource)."""
    groups: dict[str, list[Span]] = {}
    resources: dict[str, dict[str, Any]] = {}
    for s in spans:
        key = json.dumps(s.resource, sort_keys=True)
        groups.setdefault(key, []).append(s)
        resources[key] = s.resource
    out = []
    for key, group in groups.items():
        out.append(
            {
                "resource": {"attributes": _otlp_attrs(resources[key])},
                "scopeSpans": [
                    {
                        "scope": {"name": "truth"},
                        "spans": [
                            {
                                "traceId": s.trace_id,
                                "spanId": s.span_id,
                                **({"parentSpanId": s.parent_id} if s.parent_id else {}),
                                "name": s.name,
                                "kind": int(s.kind),
                                "startTimeUnixNano": str(s.start_ns),
                                "endTimeUnixNano": str(s.end_ns),
                                "attributes": _otlp_attrs(s.attributes),
                                "events": [
                                    {
                                        "timeUnixNano": str(e.time_ns),
                                        "name": e.name,
                                        "attributes": _otlp_attrs(e.attributes),
                                    }
                                    for e in s.events
                                ],
                                "status": {"code": int(s.status), "message": s.status_message},
                            }
                            for s in group
                        ],
                    }
                ],
            }
        )
    return {"resourceSpans": out}


def to_otlp_lines(spans: list[Span], per_line: int = 3) -> str:
    """Collector file-exporter form: several requests, one per line, a trace spread over lines."""
    lines = [json.dumps(to_otlp(spans[i : i + per_line])) for i in range(0, len(spans), per_line)]
    return "\n".join(lines) + "\n"


def _jaeger_tag(k: str, v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"key": k, "type": "bool", "value": v}
    if isinstance(v, int):
        return {"key": k, "type": "int64", "value": v}
    if isinstance(v, float):
        return {"key": k, "type": "float64", "value": v}
    return {"key": k, "type": "string", "value": str(v)}


_JAEGER_KIND = {
    SpanKind.SERVER: "server",
    SpanKind.CLIENT: "client",
    SpanKind.PRODUCER: "producer",
    SpanKind.CONSUMER: "consumer",
    SpanKind.INTERNAL: "internal",
}


def to_jaeger(traces: list[list[Span]]) -> dict[str, Any]:
    """Jaeger query-API JSON ``{"data": [...]}`` (microsecond times)."""
    data = []
    for spans in traces:
        processes: dict[str, dict[str, Any]] = {}
        pids: dict[str, str] = {}
        out = []
        for s in spans:
            key = json.dumps(s.resource, sort_keys=True)
            if key not in pids:
                pids[key] = f"p{len(pids) + 1}"
                processes[pids[key]] = {
                    "serviceName": s.service,
                    "tags": [_jaeger_tag(k, v) for k, v in s.resource.items() if k != a.SERVICE_NAME],
                }
            tags = [_jaeger_tag(k, v) for k, v in s.attributes.items()]
            if s.kind in _JAEGER_KIND:
                tags.append(_jaeger_tag("span.kind", _JAEGER_KIND[s.kind]))
            if s.status == StatusCode.ERROR:
                tags.append(_jaeger_tag("error", True))
                tags.append(_jaeger_tag("otel.status_code", "ERROR"))
                if s.status_message:
                    tags.append(_jaeger_tag("otel.status_description", s.status_message))
            refs = []
            if s.parent_id:
                ref = "FOLLOWS_FROM" if s.ref_type == RefType.FOLLOWS_FROM else "CHILD_OF"
                refs.append({"refType": ref, "traceID": s.trace_id, "spanID": s.parent_id})
            out.append(
                {
                    "traceID": s.trace_id,
                    "spanID": s.span_id,
                    "operationName": s.name,
                    "references": refs,
                    "startTime": s.start_ns // US,
                    "duration": (s.end_ns - s.start_ns) // US,
                    "tags": tags,
                    "logs": [
                        {
                            "timestamp": e.time_ns // US,
                            "fields": [_jaeger_tag("event", e.name)]
                            + [_jaeger_tag(k, v) for k, v in e.attributes.items()],
                        }
                        for e in s.events
                    ],
                    "processID": pids[key],
                    "warnings": None,
                }
            )
        data.append({"traceID": spans[0].trace_id, "spans": out, "processes": processes, "warnings": None})
    return {"data": data}


_ZIPKIN_KIND = {
    SpanKind.SERVER: "SERVER",
    SpanKind.CLIENT: "CLIENT",
    SpanKind.PRODUCER: "PRODUCER",
    SpanKind.CONSUMER: "CONSUMER",
}


def to_zipkin(spans: list[Span]) -> list[dict[str, Any]]:
    """Zipkin v2 JSON: a list of spans; resource attributes travel as tags (Zipkin has no resource)."""
    out = []
    for s in spans:
        tags = {
            k: str(v).lower() if isinstance(v, bool) else str(v)
            for k, v in s.resource.items()
            if k != a.SERVICE_NAME
        }
        tags.update({k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in s.attributes.items()})
        if s.status == StatusCode.ERROR:
            tags["error"] = s.status_message or "true"
        z: dict[str, Any] = {
            "traceId": s.trace_id,
            "id": s.span_id,
            "name": s.name,
            "timestamp": s.start_ns // US,
            "duration": (s.end_ns - s.start_ns) // US,
            "localEndpoint": {"serviceName": s.service},
            "tags": tags,
        }
        if s.parent_id:
            z["parentId"] = s.parent_id
        if s.kind in _ZIPKIN_KIND:
            z["kind"] = _ZIPKIN_KIND[s.kind]
        if s.events:
            z["annotations"] = [{"timestamp": e.time_ns // US, "value": e.name} for e in s.events]
        if "peer.service" in s.attributes:
            # Zipkin names the callee in the remote endpoint, not in a tag (Brave writes it so).
            z["remoteEndpoint"] = {"serviceName": str(tags.pop("peer.service"))}
        out.append(z)
    return out


def anomalous_otlp_lines(path: Path) -> Path:
    """Collector lines at ``path`` with an orphan, a duplicate span id, a span without start, a span
    ending before it starts, odd attribute values, a bad trace id, a bad line and a repeated line."""
    traces = [request_trace(500 + i, failure="db" if i % 3 == 0 else None) for i in range(9)]
    docs = [json.loads(line) for line in to_otlp_lines([s for t in traces for s in t.spans], 5).splitlines()]

    def first_spans(doc: dict) -> list[dict]:
        return [sp for rs in doc["resourceSpans"] for ss in rs["scopeSpans"] for sp in ss["spans"]]

    first_spans(docs[0])[0]["parentSpanId"] = "ffffffffffffffff"
    spans = first_spans(docs[1])
    spans[1]["spanId"] = spans[0]["spanId"]
    spans = first_spans(docs[2])
    spans[0]["startTimeUnixNano"] = str(int(spans[0]["endTimeUnixNano"]) + 10**9)
    first_spans(docs[3])[0]["attributes"] = [
        {"key": "http.response.status_code", "value": {"stringValue": "abc"}},
        {"key": "x", "value": {"arrayValue": {"values": [{"intValue": "1"}]}}},
    ]
    del first_spans(docs[4])[0]["startTimeUnixNano"]
    first_spans(docs[5])[0]["traceId"] = "zz"
    first_spans(docs[6])[0]["kind"] = 99
    lines = [json.dumps(d) for d in docs] + ["{bad json", json.dumps(docs[0])]
    path.write_text("\n".join(lines) + "\n")
    return path

"""Span shapes other systems emit, each with its known answer (layers, diagnosis, warnings).

:mod:`tests.analyze.truth` lays out the journey as tracekit's own library and demo trace it; the
shapes here are the ones Traefik, OpenTracing and Zipkin/Brave tracers, collectors associating pods by
IP, async workers and relative-time tools write. Each builder returns a :class:`Shape`: the spans,
the nanoseconds every layer must get, and what the diagnosis and the warnings must say. Times are
on a microsecond grid so the Jaeger and Zipkin forms (microsecond timestamps) carry the same truth;
the serialisers of :mod:`tests.analyze.truth` write the three forms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.analyze.truth import APP_RES, CLIENT_RES, T0, US, Built, Ids
from tracekit import attributes as a
from tracekit.analyze.model import Event, Span, SpanKind, StatusCode

TRAEFIK_RES = {
    a.SERVICE_NAME: "traefik",
    a.K8S_NAMESPACE_NAME: "traefik",
    a.K8S_POD_NAME: "traefik-6c8f9-q2w3e",
    a.K8S_POD_UID: "uid-traefik",
    a.K8S_NODE_NAME: "node-1",
}
#: A pod the k8sattributes processor knew by its IP only (``host.name`` is then the pod name).
REPORTER_RES = {a.SERVICE_NAME: "reporter", a.K8S_POD_IP: "10.244.2.5", "host.name": "reporter-6f7d-abc12"}
INVENTORY_RES = {a.SERVICE_NAME: "inventory", a.K8S_POD_IP: "10.244.3.9", "host.name": "inventory-5d4c-xyz98"}
#: Two pods a collector behind a proxy associated with the proxy's source IP: one identity for both.
_PROXIED = {a.K8S_POD_UID: "uid-of-the-proxy-pod", a.K8S_POD_IP: "10.244.0.1", a.K8S_NAMESPACE_NAME: "shop"}
FRONTEND_RES = {a.SERVICE_NAME: "frontend", **_PROXIED}
CART_RES = {a.SERVICE_NAME: "cart", **_PROXIED}


@dataclass
class Shape(Built):
    """A :class:`~tests.analyze.truth.Built` trace plus what else the analysis must say about it."""

    kind: str | None = None
    outcome: str | None = None
    #: A substring one of the trace's warnings must hold (None: no warning is expected at all).
    warning: str | None = None
    #: (spans, ms) of work outside the root window.
    outside: tuple[int, float] = (0, 0.0)


class _Builder:
    """Spans at µs offsets from one start, with ids in order."""

    def __init__(self, n: int, start: int | None = None) -> None:
        self.tid = f"{0x5A00 + n:032x}"
        self.ids = Ids(0x5A00 + n)
        self.t = T0 + n * 10**9 if start is None else start
        self.spans: list[Span] = []

    def add(
        self,
        parent: str | None,
        name: str,
        kind: SpanKind,
        start_us: int,
        end_us: int,
        res: dict[str, Any],
        attrs: dict[str, Any] | None = None,
        **kw: Any,
    ) -> str:
        sid = self.ids()
        self.spans.append(
            Span(
                trace_id=self.tid,
                span_id=sid,
                parent_id=parent,
                name=name,
                kind=kind,
                start_ns=self.t + start_us * US,
                end_ns=self.t + end_us * US,
                service=res[a.SERVICE_NAME],
                attributes=attrs or {},
                resource=res,
                **kw,
            )
        )
        return sid

    def shape(self, truth_us: dict[str, int], failed_layer: str | None = None, **kw: Any) -> Shape:
        truth = {layer: us * US for layer, us in truth_us.items() if us}
        return Shape(self.tid, self.spans, truth, failed_layer, **kw)


def _error(status: int, message: str = "") -> dict[str, Any]:
    return {"status": StatusCode.ERROR if status >= 500 else StatusCode.UNSET, "status_message": message}


# --- Traefik v3: EntryPoint SERVER -> Router INTERNAL -> Service INTERNAL -> ReverseProxy CLIENT ---------


def traefik(n: int, failure: str | None = None) -> Shape:
    """A request through Traefik v3's span shape, with its failure (or none).

    ``failure``: ``app`` (the pod answered 500), ``db`` (the app's database call failed), ``refused``
    (the ReverseProxy call was refused: 502, no pod span), ``no-servers`` (the service has no servers:
    Traefik answered 503 itself, Router and Service spans but no ReverseProxy).
    """
    b = _Builder(n)
    status = {None: 200, "app": 500, "db": 500, "refused": 502, "no-servers": 503}[failure]
    client_end, ep_end = (10_000, 9_000) if failure not in ("refused", "no-servers") else (3_000, 2_000)
    client = b.add(
        None,
        "GET",
        SpanKind.CLIENT,
        0,
        client_end,
        CLIENT_RES,
        {"url.full": "http://shop.example.com/api/items", "http.response.status_code": status},
        status=StatusCode.ERROR if status >= 400 else StatusCode.UNSET,
    )
    http = {"http.request.method": "GET", "url.path": "/api/items"}
    entry = b.add(
        client,
        "EntryPoint",
        SpanKind.SERVER,
        1_000,
        ep_end,
        TRAEFIK_RES,
        {"entry_point": "web", **http, "http.response.status_code": status},
        **_error(status),
    )
    router = b.add(
        entry,
        "Router",
        SpanKind.INTERNAL,
        1_100,
        ep_end - 100,
        TRAEFIK_RES,
        {
            "traefik.router.name": "shop@kubernetes",
            "traefik.service.name": "shop-web-80",
            "http.route": "/api",
        },
    )
    service = b.add(
        router,
        "Service",
        SpanKind.INTERNAL,
        1_200,
        ep_end - 200,
        TRAEFIK_RES,
        {"traefik.service.name": "shop-web-80"},
    )
    upstream = {"server.address": "10.244.1.7", "url.full": "http://10.244.1.7:8080/api/items"}
    if failure == "no-servers":
        return b.shape({"edge": 2_000, "ingress": 1_000}, "service", kind="no-endpoints", outcome="failed")
    if failure == "refused":
        b.add(
            service,
            "ReverseProxy",
            SpanKind.CLIENT,
            1_300,
            1_700,
            TRAEFIK_RES,
            {**upstream, "http.response.status_code": 502, "error.type": "connection refused"},
            status=StatusCode.ERROR,
        )
        truth = {"edge": 2_000, "ingress": 600, "service": 400}
        return b.shape(truth, "service", kind="no-endpoints", outcome="failed")
    proxy = b.add(
        service,
        "ReverseProxy",
        SpanKind.CLIENT,
        1_300,
        8_700,
        TRAEFIK_RES,
        {**upstream, "http.response.status_code": status},
        status=StatusCode.ERROR if status >= 400 else StatusCode.UNSET,
    )
    app_attrs = {"http.route": "/api/items", "http.response.status_code": status}
    events = ()
    if failure == "app":
        events = (
            Event("exception", b.t + 8_500 * US, {"exception.type": "KeyError", "exception.message": "sku"}),
        )
    app = b.add(
        proxy,
        "GET /api/items",
        SpanKind.SERVER,
        1_500,
        8_500,
        APP_RES,
        app_attrs,
        **_error(status),
        events=events,
    )
    truth = {"edge": 2_000, "ingress": 600, "service": 400, "app": 7_000}
    if failure == "db":
        b.add(
            app,
            "SELECT shop",
            SpanKind.CLIENT,
            3_000,
            6_000,
            APP_RES,
            {"db.system.name": "postgresql", "db.query.text": "SELECT * FROM items"},
            status=StatusCode.ERROR,
            status_message="deadlock detected",
        )
        truth["app"], truth["db"] = 4_000, 3_000
        return b.shape(truth, "db", kind="db-error", outcome="failed")
    if failure == "app":
        return b.shape(truth, "app", kind="exception", outcome="failed")
    return b.shape(truth)


# --- database calls in every convention -------------------------------------------------------------

DB_CONVENTIONS: dict[str, dict[str, Any]] = {
    "otel-current": {"db.system.name": "postgresql", "db.query.text": "SELECT 1"},
    "otel-old": {"db.system": "postgresql", "db.statement": "SELECT 1"},
    "opentracing": {"db.type": "sql", "db.instance": "shop", "db.statement": "SELECT 1"},
    "brave-sql-query": {"sql.query": "SELECT 1"},
    "remote-endpoint": {"peer.service": "postgres"},
}


def db_call(n: int, convention: str) -> Shape:
    """An app whose database call is marked the ``convention`` way only."""
    b = _Builder(n)
    app = b.add(None, "GET /api/items", SpanKind.SERVER, 0, 10_000, APP_RES, {"http.route": "/api/items"})
    b.add(app, "query", SpanKind.CLIENT, 2_000, 7_000, APP_RES, DB_CONVENTIONS[convention])
    return b.shape({"app": 5_000, "db": 5_000})


# --- a pod known by its IP only ---------------------------------------------------------------------


def pod_ip_only(n: int) -> Shape:
    """A job in a pod the collector knew by IP only, calling another such pod through its Service."""
    b = _Builder(n)
    root = b.add(None, "nightly sync", SpanKind.INTERNAL, 0, 10_000, REPORTER_RES)
    call = b.add(
        root,
        "POST",
        SpanKind.CLIENT,
        1_000,
        9_000,
        REPORTER_RES,
        {"url.full": "http://inventory.shop.svc.cluster.local/sync", "http.response.status_code": 200},
    )
    b.add(
        call, "POST /sync", SpanKind.SERVER, 1_500, 8_500, INVENTORY_RES, {"http.response.status_code": 200}
    )
    return b.shape({"app": 9_000, "service": 1_000})


# --- one pod identity, two pods on the wire -----------------------------------------------------------


def false_sidecar(n: int) -> Shape:
    """Two services with the same pod identity (mis-associated) whose call went to another address."""
    b = _Builder(n)
    root = b.add(None, "GET /cart", SpanKind.SERVER, 0, 10_000, FRONTEND_RES, {"http.route": "/cart"})
    call = b.add(
        root,
        "GET",
        SpanKind.CLIENT,
        1_000,
        9_000,
        FRONTEND_RES,
        {
            "server.address": "10.244.5.5",
            "network.peer.address": "10.244.5.5",
            "url.full": "http://10.244.5.5:7070/c",
        },
    )
    b.add(call, "GET /c", SpanKind.SERVER, 1_500, 8_500, CART_RES, {"http.route": "/c"})
    return b.shape({"app": 9_000, "service": 1_000}, warning="carry the same pod identity")


# --- a request rejected with 4xx --------------------------------------------------------------------


def rejected(n: int) -> Shape:
    """The app answered 403 because the auth service it called said Forbidden."""
    b = _Builder(n)
    root = b.add(
        None,
        "POST /orders",
        SpanKind.SERVER,
        0,
        10_000,
        APP_RES,
        {"http.route": "/orders", "http.response.status_code": 403},
    )
    b.add(
        root,
        "POST",
        SpanKind.CLIENT,
        2_000,
        6_000,
        APP_RES,
        {"url.full": "https://auth.example.com/check", "http.response.status_code": 403},
        status=StatusCode.ERROR,
        status_message="Forbidden",
    )
    return b.shape({"app": 6_000, "external": 4_000}, "external", kind="rejected", outcome="rejected")


# --- a client root that does more than the request ----------------------------------------------------


def client_wrapper(n: int) -> Shape:
    """A CLIENT root around the real call, a call to an untraced logging backend and a publish."""
    b = _Builder(n)
    root = b.add(None, "checkout", SpanKind.CLIENT, 0, 20_000, CLIENT_RES)
    call = b.add(
        root,
        "GET",
        SpanKind.CLIENT,
        1_000,
        11_000,
        CLIENT_RES,
        {"url.full": "http://shop.example.com/api/items", "http.response.status_code": 200},
    )
    b.add(call, "GET /api/items", SpanKind.SERVER, 1_500, 10_500, APP_RES, {"http.response.status_code": 200})
    b.add(
        root,
        "POST",
        SpanKind.CLIENT,
        12_000,
        15_000,
        CLIENT_RES,
        {"url.full": "http://logs.example.net/ingest"},
    )
    b.add(
        root,
        "orders publish",
        SpanKind.PRODUCER,
        16_000,
        18_000,
        CLIENT_RES,
        {"messaging.system": "kafka", "server.address": "kafka.example.net"},
    )
    return b.shape({"client": 5_000, "edge": 1_000, "app": 9_000, "external": 5_000})


# --- work after the root ended ----------------------------------------------------------------------


def async_after_root(n: int) -> Shape:
    """A 100 µs root whose child starts 200 µs after it ended and runs 331 ms (fire-and-forget)."""
    b = _Builder(n)
    root = b.add(None, "POST /signup", SpanKind.SERVER, 0, 100, APP_RES, {"http.route": "/signup"})
    b.add(root, "send welcome email", SpanKind.INTERNAL, 300, 331_300, APP_RES)
    return b.shape({"app": 100}, warning="ran outside the root span's window", outside=(1, 331.0))


# --- siblings that overlap by a clock tick ------------------------------------------------------------


def near_sequential(n: int, overlap_us: int) -> Shape:
    """A database call ending ``overlap_us`` after the next (external) call starts.

    Below the critical path's tolerance (2 µs) the two are sequential and the database call keeps its
    time (cut at the next call's start); at or above it, it is parallel, off the path, and its time
    goes to the app.
    """
    b = _Builder(n)
    root = b.add(None, "GET /quote", SpanKind.SERVER, 0, 10_000, APP_RES, {"http.route": "/quote"})
    b.add(root, "SELECT", SpanKind.CLIENT, 1_000, 5_000 + overlap_us, APP_RES, {"db.system.name": "mysql"})
    b.add(root, "GET", SpanKind.CLIENT, 5_000, 9_000, APP_RES, {"url.full": "https://api.partner.example/q"})
    if overlap_us < 2:
        return b.shape({"app": 2_000, "db": 4_000, "external": 4_000})
    return b.shape({"app": 6_000, "external": 4_000})


# --- relative time ------------------------------------------------------------------------------------


def relative_time(n: int) -> Shape:
    """A trace written in relative time: the root starts at 0."""
    b = _Builder(n, start=0)
    root = b.add(None, "GET /api/items", SpanKind.SERVER, 0, 10_000, APP_RES, {"http.route": "/api/items"})
    b.add(root, "SELECT", SpanKind.CLIENT, 2_000, 7_000, APP_RES, {"db.system.name": "sqlite"})
    return b.shape({"app": 5_000, "db": 5_000})


SHAPES = {
    "traefik-ok": lambda: traefik(1),
    "traefik-app-500": lambda: traefik(2, "app"),
    "traefik-db-error": lambda: traefik(3, "db"),
    "traefik-refused": lambda: traefik(4, "refused"),
    "traefik-no-servers": lambda: traefik(5, "no-servers"),
    **{f"db-{c}": (lambda c=c, i=i: db_call(10 + i, c)) for i, c in enumerate(DB_CONVENTIONS)},
    "pod-ip-only": lambda: pod_ip_only(20),
    "false-sidecar": lambda: false_sidecar(21),
    "rejected-403": lambda: rejected(22),
    "client-wrapper": lambda: client_wrapper(23),
    "async-after-root": lambda: async_after_root(24),
    "overlap-below-tolerance": lambda: near_sequential(25, 1),
    "overlap-at-tolerance": lambda: near_sequential(26, 2),
    "overlap-above-tolerance": lambda: near_sequential(27, 3),
    "relative-time": lambda: relative_time(28),
}

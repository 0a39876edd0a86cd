"""Two instrumented Flask apps on real servers calling each other: one trace, routing context, no secrets."""

from __future__ import annotations

import flask
import pytest
import requests
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from werkzeug.test import Client

import tracekit
from tests.k8s.conftest import seed
from tests.tracing.servers import serve
from tracekit import attributes as a
from tracekit.k8s.routing import RoutingTable
from tracekit.tracing import provider


def _apps(back_url: list[str]) -> tuple[flask.Flask, flask.Flask]:
    front, back = flask.Flask("front"), flask.Flask("back")

    @front.get("/checkout")
    def checkout() -> dict:
        r = requests.get(f"{back_url[0]}/stock?token=s3cret&item=1", headers={"Authorization": "Bearer t0k"})
        return {"stock": r.json()["stock"]}

    @back.get("/stock")
    def stock() -> dict:
        return {"stock": 3}

    return front, back


def _attr_blob(spans) -> str:
    return repr([(dict(s.attributes), s.name) for s in spans]).lower()


def test_two_apps_one_trace_with_routing_and_no_secrets(
    kube, memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(kube)
    tp, exporter = memory
    # Users may ask to capture every header: the secret ones must still never be recorded.
    for side in ("SERVER_REQUEST", "SERVER_RESPONSE", "CLIENT_REQUEST"):
        monkeypatch.setenv(f"OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_{side}", ".*,Authorization")
    back_url: list[str] = []
    front, back = _apps(back_url)

    @front.get("/login")
    def login() -> flask.Response:
        resp = flask.make_response("ok")
        resp.set_cookie("session", "abc123")
        return resp

    tracekit.instrument(front, tracer_provider=tp)
    tracekit.instrument(back, tracer_provider=tp)
    with serve(back) as b, serve(front) as f:
        back_url.append(b)
        r = requests.get(
            f"{f}/checkout?password=hunter2&q=shoes",
            headers={
                "Host": "shop.example.com",
                "Cookie": "sid=zzz",
                "Authorization": "Basic eHh4",
                "X-Team": "a",
            },
        )
        assert r.status_code == 200 and r.json() == {"stock": 3}
        assert requests.get(f"{f}/login", headers={"X-Forwarded-Host": "shop.example.com:443"}).ok

    spans = exporter.get_finished_spans()
    checkout = [
        s
        for s in spans
        if s.attributes.get("http.target", "").startswith("/checkout") or s.name.endswith("/checkout")
    ]
    trace_ids = {s.context.trace_id for s in checkout} | {
        s.context.trace_id
        for s in spans
        if s.name.endswith("/stock") or "stock" in str(s.attributes.get("http.url"))
    }
    assert len(trace_ids) == 1, "the whole checkout is one trace"

    servers = {s.name: s for s in spans if s.kind == SpanKind.SERVER}
    front_span, back_span = servers["GET /checkout"], servers["GET /stock"]
    client_to_back = next(
        s for s in spans if s.kind == SpanKind.CLIENT and "/stock" in str(s.attributes.get("http.url"))
    )
    assert back_span.parent.span_id == client_to_back.context.span_id  # linked through traceparent
    assert client_to_back.parent.span_id == front_span.context.span_id

    # Routing context on the SERVER span the ingress host reached; none for the direct pod-to-pod call.
    assert front_span.attributes[a.INGRESS_NAME] == "shop"
    assert front_span.attributes[a.INGRESS_RULE_HOST] == "shop.example.com"
    assert front_span.attributes[a.BACKEND_SERVICE_NAME] == "web-service"
    assert front_span.attributes[a.BACKEND_SERVICE_PORT] == 80
    assert front_span.attributes[a.BACKEND_SELECTS_POD] is True
    assert back_span.attributes[a.ROUTE_MATCHED] is False
    assert servers["GET /login"].attributes[a.INGRESS_NAME] == "shop"  # via X-Forwarded-Host

    # Secrets: no secret header under any key, query secrets redacted, other headers still captured.
    blob = _attr_blob(spans)
    for secret in (
        "authorization",
        "cookie",
        "set-cookie",
        "set_cookie",
        "hunter2",
        "s3cret",
        "bearer",
        "abc123",
        "zzz",
    ):
        assert secret not in blob, secret
    assert "password=REDACTED" in front_span.attributes["http.target"]
    assert "token=REDACTED&item=1" in client_to_back.attributes["http.url"]
    assert front_span.attributes["http.request.header.x_team"] == ("a",)


def test_instrument_is_idempotent(memory) -> None:
    tp, exporter = memory
    app = flask.Flask("idem")
    app.get("/")(lambda: "ok")
    assert tracekit.instrument(app, tracer_provider=tp, k8s="off") is app
    first = provider.current()
    tracekit.instrument(app, tracer_provider=tp, k8s="off")
    assert tracekit.configure() is first
    assert Client(app).get("/").status_code == 200
    assert len([s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER]) == 1


def test_fixed_routing_table_and_user_hooks(memory) -> None:
    tp, exporter = memory
    from tests.k8s.fakeapi import ingress, rule

    table = RoutingTable([ingress("static", [rule("h.example.com", ("/", "Prefix", "svc"))])])
    seen = []
    app = flask.Flask("fixed")
    app.get("/x")(lambda: "ok")
    tracekit.instrument(
        app,
        tracer_provider=tp,
        k8s="off",
        routing=table,
        request_hook=lambda span, env: seen.append(env["PATH_INFO"]),
    )
    Client(app).get("/x", headers={"Host": "h.example.com"})
    (span,) = exporter.get_finished_spans()
    assert span.attributes[a.INGRESS_NAME] == "static" and seen == ["/x"]


def test_sampler_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    exporter = InMemorySpanExporter()
    rt = tracekit.configure(span_processor=SimpleSpanProcessor(exporter), k8s="off")
    app = tracekit.instrument(flask.Flask("sampled"), k8s="off")
    app.get("/")(lambda: "ok")
    assert Client(app).get("/").status_code == 200
    assert rt.owns_provider and exporter.get_finished_spans() == ()


def test_sdk_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    app = flask.Flask("off")
    assert tracekit.instrument(app) is app
    assert provider.current() is None and "tracekit" not in app.extensions
    assert not getattr(app, "_is_instrumented_by_opentelemetry", False)


RESPECT = """
import flask
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from werkzeug.test import Client
import tracekit
from tracekit.tracing import provider

exporter = InMemorySpanExporter()
mine = TracerProvider()
mine.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(mine)
app = flask.Flask("own")
app.get("/")(lambda: "ok")
tracekit.instrument(app, k8s="off")
Client(app).get("/")
rt = provider.current()
assert rt.provider is mine and not rt.owns_provider, rt
assert [s.name for s in exporter.get_finished_spans()] == ["GET /"]
print("OK")
"""


def test_respects_the_apps_own_global_provider() -> None:
    """In a fresh process (the global provider can be set once): the app's provider is used as is."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", RESPECT], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "OK", out.stderr[-2000:]

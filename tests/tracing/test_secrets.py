"""Every place a URL or a header can land, tried with secrets, checked on what reached the collector.

The app runs on a real server with tracekit's own pipeline (OTLP/HTTP to a receiver on loopback); the
secrets are injected by the test, and the test looks for them in everything the receiver decoded:
attributes, event attributes (``exception.message``, ``exception.stacktrace``), status messages.
"""

from __future__ import annotations

import contextlib

import flask
import pytest
import requests
from opentelemetry import trace

import tracekit
from tests.tracing.otlp_receiver import OtlpReceiver
from tests.tracing.servers import serve
from tracekit.tracing import provider

SECRETS = ("s3cr3t-token", "hunter2", "AKIAEXAMPLE", "sigvalue", "k3yvalue", "apik3y", "clientsecr3t",
           "amzsig", "us3r", "passw0rd", "xapikey-v", "xauth-v")  # fmt: skip


def _app(dead_port: int) -> flask.Flask:
    app = flask.Flask("secrets")

    @app.get("/call-out")
    def call_out() -> str:
        # A failed outgoing call: urllib3 puts the URL, query included, in the exception message.
        url = (
            f"http://us3r:passw0rd@127.0.0.1:{dead_port}/x?token=s3cr3t-token&client_secret=clientsecr3t&q=1"
        )
        with contextlib.suppress(requests.ConnectionError):
            requests.get(url, timeout=2)
        return "ok"

    @app.get("/fail")
    def fail() -> str:
        # An unhandled error whose message holds a signed URL: it lands in the SERVER span's event.
        raise RuntimeError("fetch failed: https://bucket.s3.amazonaws.com/o?X-Amz-Signature=amzsig&n=1")

    @app.get("/event")
    def event() -> str:
        span = trace.get_current_span()
        span.add_event("redirect", {"location": "https://idp.example/cb?code=k3yvalue&state=1"})
        span.set_status(trace.Status(trace.StatusCode.ERROR, "upstream said no: /auth?apikey=apik3y"))
        return "ok"

    return app


def test_no_secret_reaches_the_collector(dead_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    for side in ("SERVER_REQUEST", "SERVER_RESPONSE", "CLIENT_REQUEST"):
        monkeypatch.setenv(f"OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_{side}", ".*")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    with OtlpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        app = tracekit.instrument(_app(dead_port), k8s="off")
        with serve(app) as base:
            headers = {"X-Api-Key": "xapikey-v", "X-Auth-Token": "xauth-v", "X-Team": "blue"}
            query = "AWSAccessKeyId=AKIAEXAMPLE&Signature=sigvalue&sig=sigvalue&key=k3yvalue&password=hunter2"
            assert requests.get(f"{base}/call-out?{query}", headers=headers).text == "ok"
            assert requests.get(f"{base}/fail?apikey=apik3y").status_code == 500
            assert requests.get(f"{base}/event").text == "ok"
        assert provider.current().provider.force_flush(10_000)
        spans = receiver.wait_spans(4)
    wire = repr(spans)
    leaked = [s for s in SECRETS if s in wire]
    assert not leaked, leaked
    by_name = {s["name"]: s for s in spans}
    # Redacted, not removed: what is not secret is still there to debug with.
    call_out = by_name["GET /call-out"]["attributes"]
    assert "AWSAccessKeyId=REDACTED&Signature=REDACTED&sig=REDACTED&key=REDACTED" in call_out["http.target"]
    assert call_out["http.request.header.x_team"] == ["blue"]
    client = next(s for s in spans if s["kind"] == 3)
    assert "REDACTED:REDACTED@" in client["attributes"]["http.url"]
    assert "token=REDACTED&client_secret=REDACTED&q=1" in client["attributes"]["http.url"]
    messages = [e[1].get("exception.message", "") for s in spans for e in s["events"]]
    assert any("token=REDACTED" in m for m in messages), messages  # the urllib3 message, redacted
    assert any("X-Amz-Signature=REDACTED&n=1" in m for m in messages), messages
    traces = [e[1].get("exception.stacktrace", "") for s in spans for e in s["events"]]
    assert any("X-Amz-Signature=REDACTED" in t for t in traces)
    event = by_name["GET /event"]
    assert ("redirect", {"location": "https://idp.example/cb?code=REDACTED&state=1"}) in event["events"]
    assert event["status"][1] == "upstream said no: /auth?apikey=REDACTED"

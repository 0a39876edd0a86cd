"""The real export path: OTLP/HTTP protobuf to a receiver on loopback, and a collector that is down."""

from __future__ import annotations

import logging
import sys

import flask
import pytest
from werkzeug.test import Client

import tracekit
from tests.k8s.conftest import seed
from tests.tracing.otlp_receiver import OtlpReceiver
from tracekit import attributes as a
from tracekit.tracing import provider
from tracekit.tracing.processor import BoundedBatchSpanProcessor


def _app() -> flask.Flask:
    app = flask.Flask("wire")
    app.get("/items/<int:n>")(lambda n: {"n": n})
    return app


def test_otlp_http_export_carries_pod_and_routing_context(kube, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(kube)
    with OtlpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        monkeypatch.delenv("OTEL_EXPORTER_OTLP_PROTOCOL", raising=False)
        monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test")
        app = tracekit.instrument(_app(), service_name="shop")
        rt = provider.current()
        assert isinstance(rt.processor, BoundedBatchSpanProcessor) and rt.owns_provider
        assert Client(app).get("/items/7?api_key=k3y", headers={"Host": "shop.example.com"}).json == {"n": 7}
        rt.provider.force_flush()
        (span,) = receiver.wait_spans(1)
    assert span["name"] == "GET /items/<int:n>"
    res = span["resource"]
    assert res["service.name"] == "shop"
    assert res["deployment.environment.name"] == "test"
    assert res[a.K8S_POD_NAME] == "shop-1" and res[a.K8S_NAMESPACE_NAME] == "shop"
    assert res[a.K8S_DEPLOYMENT_NAME] == "shop" and res[a.K8S_REPLICASET_NAME] == "shop-abc"
    assert res[a.K8S_CONTAINER_NAME] == "app"
    assert res[a.K8S_POD_LABEL_PREFIX + "app.kubernetes.io/name"] == "shop"
    attrs = span["attributes"]
    assert attrs[a.INGRESS_NAME] == "shop" and attrs[a.BACKEND_SERVICE_NAME] == "web-service"
    assert attrs["http.target"] == "/items/7?api_key=REDACTED"


def test_env_service_name_beats_code_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    rt = tracekit.configure(service_name="from-code", k8s="off")
    assert rt.provider.resource.attributes["service.name"] == "from-env"
    assert rt.processor is None


def test_grpc_protocol_gives_the_grpc_exporter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    exporter = provider.make_exporter()
    assert type(exporter).__module__.startswith("opentelemetry.exporter.otlp.proto.grpc")


def test_grpc_without_the_optional_package_falls_back(monkeypatch, caplog: pytest.LogCaptureFixture) -> None:
    # The test extra installs the gRPC exporter; a None in sys.modules makes its import fail, as on a
    # machine without the extra.
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.grpc", None)
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.grpc.trace_exporter", None)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    caplog.set_level(logging.WARNING, logger="tracekit")
    exporter = provider.make_exporter()
    assert type(exporter).__module__.startswith("opentelemetry.exporter.otlp.proto.http")
    assert "tracekit[grpc]" in caplog.text


def test_collector_down_requests_complete_and_drops_are_counted(
    blackhole, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint, connected = blackhole
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "30")
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "4")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "2")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "10")
    monkeypatch.setenv("TRACEKIT_SHUTDOWN_TIMEOUT", "1")
    caplog.set_level(logging.INFO)
    app = tracekit.instrument(_app(), k8s="off")
    client = Client(app)
    assert client.get("/items/1").status_code == 200
    assert client.get("/items/2").status_code == 200
    assert connected.wait(10), "the exporter should be stuck talking to the silent collector"
    statuses = [client.get(f"/items/{i}").status_code for i in range(40)]
    assert statuses == [200] * 40
    rt = provider.current()
    counts = rt.export_counts()
    assert counts.ended == 42 and counts.exported == 0
    assert rt.dropped_spans == counts.dropped >= 42 - 4 - 2  # at most a full queue and one batch kept
    provider.shutdown()  # bounded by TRACEKIT_SHUTDOWN_TIMEOUT although the collector never answers
    final = [r for r in caplog.records if "span export stopped" in r.getMessage()]
    assert len(final) == 1 and "0 exported" in final[0].getMessage()
    assert final[0].levelno == logging.WARNING
    assert not [r for r in caplog.records if r.getMessage().startswith("Queue full")]

"""The Jaeger export: the shape the Jaeger UI's JSON upload takes, and a faithful round trip."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from tests.analyze.renderers.shopdata import OTLP_FILE, handmade_traces
from tracekit.analyze.api import analyze_traces
from tracekit.analyze.model import Trace
from tracekit.analyze.readers import read_traces
from tracekit.analyze.renderers.jaeger import render_jaeger

SPAN_KEYS = {
    "traceID",
    "spanID",
    "operationName",
    "references",
    "startTime",
    "duration",
    "tags",
    "logs",
    "processID",
    "warnings",
    "flags",
}
TAG_TYPES = {"string": str, "bool": bool, "int64": int, "float64": float}


def _read(text: str) -> list[Trace]:
    return list(read_traces(io.BytesIO(text.encode("utf-8"))))


def _zipkin_text() -> str:
    """The shop data as Zipkin v2 JSON (what a Zipkin-instrumented system would give us)."""
    spans = []
    base_us = 1_763_800_000_000_000
    for t in handmade_traces():
        for s in t["spans"]:
            z: dict[str, Any] = {
                "traceId": t["trace_id"],
                "id": s["span_id"],
                "name": s["name"],
                "kind": s["kind"].upper(),
                "timestamp": base_us + round(s["start_ms"] * 1000),
                "duration": round(s["duration_ms"] * 1000),
                "localEndpoint": {"serviceName": s["service"]},
                "tags": {
                    k: str(v) for k, v in {**s["resource"], **s["attributes"]}.items() if k != "service.name"
                },
            }
            if s["parent_id"]:
                z["parentId"] = s["parent_id"]
            if s["status"] == "error":
                z["tags"]["error"] = s["status_message"] or "true"
            spans.append(z)
    return json.dumps(spans)


@pytest.fixture(scope="module")
def otlp_traces() -> list[Trace]:
    return list(read_traces(OTLP_FILE))


def test_document_has_the_jaeger_ui_upload_shape(otlp_traces: list[Trace]) -> None:
    doc = json.loads(render_jaeger(otlp_traces))
    assert set(doc) == {"data"} and len(doc["data"]) == len(otlp_traces)
    for trace in doc["data"]:
        assert set(trace) == {"traceID", "spans", "processes", "warnings"}
        assert len(trace["traceID"]) == 32
        for span in trace["spans"]:
            assert set(span) == SPAN_KEYS
            assert span["traceID"] == trace["traceID"] and len(span["spanID"]) == 16
            assert isinstance(span["startTime"], int) and isinstance(span["duration"], int)
            assert span["flags"] == 1 and span["warnings"] is None and span["logs"] == []
            assert span["processID"] in trace["processes"]
            for ref in span["references"]:
                assert set(ref) == {"refType", "traceID", "spanID"}
                assert ref["refType"] in ("CHILD_OF", "FOLLOWS_FROM")
            for tag in span["tags"]:
                assert set(tag) == {"key", "type", "value"}
                assert isinstance(tag["value"], TAG_TYPES[tag["type"]])
        for process in trace["processes"].values():
            assert set(process) == {"serviceName", "tags"}


def test_kind_status_and_kubernetes_tags(otlp_traces: list[Trace]) -> None:
    doc = json.loads(render_jaeger(otlp_traces))
    failed = next(t for t in doc["data"] if t["traceID"].endswith("6"))
    processes = failed["processes"]
    by_name = {}
    for span in failed["spans"]:
        tags = {t["key"]: t["value"] for t in span["tags"]}
        by_name[(processes[span["processID"]]["serviceName"], span["operationName"], tags["span.kind"])] = (
            tags
        )
    db = by_name[("shop-db", "SELECT products", "client")]
    assert db["otel.status_code"] == "ERROR" and db["error"] is True
    assert db["otel.status_description"] == "no such table: products"
    ingress = by_name[("ingress", "GET /api/products", "server")]
    assert ingress["tracekit.service.name"] == "web-service"  # routing attributes stay span tags
    app = next(p for p in processes.values() if p["serviceName"] == "shop")
    app_tags = {t["key"]: t["value"] for t in app["tags"]}
    assert app_tags["k8s.pod.name"] == "shop-7d9f8c6b5-fghij"
    assert app_tags["k8s.container.name"] == "app"
    assert "service.name" not in app_tags
    # One process per distinct resource: loadgen, ingress, the app and the sidecar containers.
    assert sorted(p["serviceName"] for p in processes.values()) == ["ingress", "loadgen", "shop", "shop-db"]


def _attribution(report: dict[str, Any]) -> tuple[Any, ...]:
    traces = sorted(report["traces"], key=lambda t: t["trace_id"])
    return (
        report["summary"]["traces"],
        report["summary"]["spans"],
        report["summary"]["error_traces"],
        report["summary"]["layers"],
        [
            (
                t["trace_id"],
                t["duration_ms"],
                t["status"],
                t["layers"],
                t["diagnosis"]["failed_layer"],
                t["diagnosis"].get("span_id"),
            )
            for t in traces
        ],
    )


@pytest.mark.parametrize("source", ["otlp", "zipkin", "jaeger"])
def test_round_trip_keeps_the_attribution(source: str, otlp_traces: list[Trace]) -> None:
    if source == "otlp":
        before = otlp_traces
    elif source == "zipkin":
        before = _read(_zipkin_text())
    else:
        before = _read(render_jaeger(otlp_traces))
    after = _read(render_jaeger(before))
    assert [t.trace_id for t in after] == [t.trace_id for t in before]
    assert _attribution(analyze_traces(after)) == _attribution(analyze_traces(before))
    for b, a in zip(before, after, strict=True):
        b_spans = {s.span_id: s for s in b.spans}
        for s in a.spans:
            assert s.parent_id == b_spans[s.span_id].parent_id
            assert s.kind == b_spans[s.span_id].kind and s.status == b_spans[s.span_id].status
            assert s.resource == b_spans[s.span_id].resource


def test_unicode_and_odd_values_survive() -> None:
    from tracekit.analyze.model import Event, Span, SpanKind, StatusCode

    span = Span(
        trace_id="ab" * 16,
        span_id="cd" * 8,
        parent_id=None,
        name="GET /é",
        kind=SpanKind.SERVER,
        start_ns=1_000_000_500,
        end_ns=1_002_000_900,
        service="svc",
        status=StatusCode.OK,
        attributes={"list": [1, 2], "bytes": b"\x00\x01", "f": 1.5, "html": "</script>"},
        resource={"service.name": "svc", "k8s.pod.name": "p"},
        events=(Event(name="retry", time_ns=1_001_000_000, attributes={"attempt": 2}),),
    )
    doc = json.loads(render_jaeger([Trace(trace_id="ab" * 16, spans=[span])]))
    s = doc["data"][0]["spans"][0]
    tags = {t["key"]: t for t in s["tags"]}
    assert tags["list"] == {"key": "list", "type": "string", "value": "[1,2]"}
    assert tags["bytes"]["type"] == "binary" and tags["f"]["type"] == "float64"
    assert tags["otel.status_code"]["value"] == "OK" and tags["span.kind"]["value"] == "server"
    assert (s["startTime"], s["duration"]) == (1_000_000, 2_000)
    assert s["logs"] == [
        {
            "timestamp": 1_001_000,
            "fields": [
                {"key": "event", "type": "string", "value": "retry"},
                {"key": "attempt", "type": "int64", "value": 2},
            ],
        }
    ]
    assert _read(render_jaeger([Trace(trace_id="ab" * 16, spans=[span])]))[0].spans[0].name == "GET /é"

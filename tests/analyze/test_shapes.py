"""Shapes other systems emit (tests/analyze/shapes.py), in OTLP, Jaeger and Zipkin form, against their
known answers: layers, diagnosis (kind and outcome), warnings, work outside the root."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.analyze.shapes import SHAPES, Shape
from tests.analyze.test_formats import write
from tests.analyze.test_truth import assert_truth
from tracekit.analyze.api import analyze_paths

FORMATS = ["otlp", "jaeger", "zipkin"]
_HEX_ID = re.compile(r"\b[0-9a-f]{16}\b")


def analysed(shape: Shape, fmt: str, tmp_path: Path) -> dict:
    path = write(fmt, [shape], tmp_path)
    report = analyze_paths([path], on_warning=lambda _: None)
    (trace,) = report["traces"]
    return trace


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", sorted(SHAPES))
def test_shape_gets_its_known_answer(name: str, fmt: str, tmp_path: Path) -> None:
    shape = SHAPES[name]()
    trace = analysed(shape, fmt, tmp_path)
    layers_ns = {layer: round(ms * 1e6) for layer, ms in trace["layers"].items()}
    assert_truth(shape, layers_ns)
    assert abs(sum(trace["layers"].values()) - trace["duration_ms"]) < 1e-6
    diagnosis = trace["diagnosis"]
    assert diagnosis["failed_layer"] == shape.failed_layer, diagnosis
    assert trace["status"] == ("error" if shape.failed_layer else "ok")
    if shape.kind is not None:
        assert diagnosis["kind"] == shape.kind, diagnosis
        assert diagnosis["outcome"] == shape.outcome, diagnosis
    else:
        assert diagnosis["outcome"] == "ok"
    if shape.warning is None:
        assert trace["warnings"] == []
    else:
        assert any(shape.warning in w for w in trace["warnings"]), trace["warnings"]
    assert trace["outside_root"]["spans"] == shape.outside[0]
    assert trace["outside_root"]["ms"] == pytest.approx(shape.outside[1])


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", sorted(SHAPES))
def test_warnings_name_only_ids_of_the_input(name: str, fmt: str, tmp_path: Path) -> None:
    shape = SHAPES[name]()
    trace = analysed(shape, fmt, tmp_path)
    ids = {s.span_id for s in shape.spans}
    for warning in trace["warnings"]:
        assert set(_HEX_ID.findall(warning)) <= ids, warning


def test_async_work_reports_the_span_of_all_work(tmp_path: Path) -> None:
    shape = SHAPES["async-after-root"]()
    trace = analysed(shape, "otlp", tmp_path)
    assert trace["duration_ms"] == pytest.approx(0.1)
    assert trace["work_ms"] == pytest.approx(331.3)


def test_zipkin_shared_span_warnings_name_the_input_id(tmp_path: Path) -> None:
    # A client and the server half sharing its id (Zipkin B3 "shared"), the server's clock 5 ms off:
    # the analysis splits the shared id (a derived id for the server half) and undoes the skew; the
    # warning names the id the file has.
    tid, sid = "5b" * 16, "00000000000000c1"
    spans = [
        {
            "traceId": tid,
            "id": sid,
            "name": "get",
            "kind": "CLIENT",
            "timestamp": 1_700_000_000_000_000,
            "duration": 1_000,
            "localEndpoint": {"serviceName": "frontend"},
        },
        {
            "traceId": tid,
            "id": sid,
            "name": "get",
            "kind": "SERVER",
            "shared": True,
            "timestamp": 1_700_000_000_005_100,
            "duration": 800,
            "localEndpoint": {"serviceName": "backend"},
        },
    ]
    path = tmp_path / "shared.json"
    path.write_text(json.dumps(spans))
    (trace,) = analyze_paths([path], on_warning=lambda _: None)["traces"]
    skew = [w for w in trace["warnings"] if "clock skew" in w]
    assert skew and f"{sid} (server side)" in skew[0], trace["warnings"]
    assert set(_HEX_ID.findall(" ".join(trace["warnings"]))) == {sid}


def test_jaeger_non_hex_span_ids_are_named_as_the_input_wrote_them(tmp_path: Path) -> None:
    # Synthetic Jaeger files use ids such as "span-a"; the reader hashes them into hex ids, and a
    # warning naming a span (here: which of two roots is analysed) names the input's id.
    def span(sid: str, start: int) -> dict:
        return {
            "traceID": "trace-1",
            "spanID": sid,
            "operationName": f"op {sid}",
            "references": [],
            "startTime": start,
            "duration": 100,
            "tags": [],
            "processID": "p1",
        }

    doc = {
        "data": [
            {
                "traceID": "trace-1",
                "spans": [span("span-a", 1_700_000_000_000_000), span("span-b", 1_700_000_000_000_050)],
                "processes": {"p1": {"serviceName": "svc", "tags": []}},
            }
        ]
    }
    path = tmp_path / "jaeger.json"
    path.write_text(json.dumps(doc))
    (trace,) = analyze_paths([path], on_warning=lambda _: None)["traces"]
    roots = [w for w in trace["warnings"] if "root spans" in w]
    assert roots and "'span-a'" in roots[0], trace["warnings"]
    assert not _HEX_ID.findall(" ".join(trace["warnings"]))

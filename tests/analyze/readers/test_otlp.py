"""OTLP JSON reading: single documents, Collector JSONL, Tempo/snake_case/base64 variants, wrappers."""

from __future__ import annotations

import base64
import gzip
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.analyze.cli_run import one_line_error, run
from tracekit.analyze.model import RefType, SpanKind, StatusCode
from tracekit.analyze.readers import read_traces

DATA = Path(__file__).parents[1] / "data"


def by_id(traces):
    return {t.trace_id: t for t in traces}


def test_single_document_maps_every_field() -> None:
    traces = by_id(read_traces(DATA / "readers_otlp_document.json"))
    trace = traces["5b8efff798038103d269b633813fc60c"]  # upper-case hex in the file
    root, child = trace.spans
    assert root.span_id == "eee19b7ec3c1b174" and root.parent_id is None  # parentSpanId ""
    assert child.parent_id == "eee19b7ec3c1b174"
    assert root.kind is SpanKind.SERVER and child.kind is SpanKind.CLIENT
    assert root.status is StatusCode.ERROR and root.status_message == "boom"
    assert child.status is StatusCode.UNSET  # "status": {}
    assert root.duration_ns == 50_000_000
    assert root.service == "frontend" and root.resource["k8s.pod.name"] == "web-1"
    assert root.attributes == {
        "http.route": "/cart",
        "http.response.status_code": 500,  # intValue as a JSON string -> int
        "sampled": True,
        "ratio": 0.25,
        "tags": ["a", "b"],
        "obj": {"x": 1},
    }
    (event,) = root.events
    assert event.name == "exception" and event.attributes == {"exception.type": "KeyError"}
    (link,) = root.links
    assert link.trace_id == "0af7651916cd43dd8448eb211c80319c" and link.span_id == "b7ad6b7169203331"
    assert root.ref_type is RefType.CHILD_OF
    orphan = traces["0af7651916cd43dd8448eb211c80319c"].spans[0]
    assert orphan.parent_id == "00f067aa0ba902b7"  # a parent that is not in the file stays as given
    assert all(t.source.endswith("readers_otlp_document.json") for t in traces.values())


def test_collector_jsonl_merges_a_trace_across_lines() -> None:
    traces = list(read_traces(DATA / "readers_otlp_collector.jsonl"))
    assert [len(t.spans) for t in traces] == [2, 3]
    a = by_id(traces)["11111111111111111111111111111111"]
    assert {s.name for s in a.spans} == {"root-a", "child-a", "query-a"}
    assert {s.service for s in a.spans} == {"app", "db"}
    b = by_id(traces)["00000000000000002222222222222222"]  # 64-bit id left-padded
    assert {s.name for s in b.spans} == {"root-b", "child-b"}


def test_gzip_stdin_and_file_objects_read_the_same() -> None:
    plain = [(t.trace_id, len(t.spans)) for t in read_traces(DATA / "readers_otlp_collector.jsonl")]
    assert [
        (t.trace_id, len(t.spans)) for t in read_traces(str(DATA / "readers_otlp_collector.jsonl.gz"))
    ] == plain
    raw = (DATA / "readers_otlp_collector.jsonl").read_bytes()
    assert [(t.trace_id, len(t.spans)) for t in read_traces(io.BytesIO(gzip.compress(raw)))] == plain
    code = (
        "import sys; from tracekit.analyze.readers import read_traces;"
        "print([(t.trace_id, len(t.spans)) for t in read_traces('-')])"
    )
    for data in (raw, gzip.compress(raw)):  # stdin cannot seek back: detection must not need to
        out = subprocess.run(
            [sys.executable, "-c", code], input=data, capture_output=True, check=True, timeout=60
        )
        assert out.stdout.decode().strip() == repr(plain)


def test_tempo_batches_base64_ids_and_enum_names() -> None:
    (trace,) = read_traces(DATA / "readers_tempo_batches_base64.json")
    assert trace.trace_id == "0af7651916cd43dd8448eb211c80319c"
    server, client = trace.spans
    assert server.span_id == "1111111111111111" and client.parent_id == "1111111111111111"
    assert server.kind is SpanKind.SERVER and client.kind is SpanKind.CLIENT
    assert server.status is StatusCode.ERROR
    assert server.attributes["http.status_code"] == 503  # intValue as a JSON number
    assert server.service == "istio-ingressgateway"


def test_snake_case_numeric_int64_and_all_zero_parent() -> None:
    (trace,) = read_traces(DATA / "readers_otlp_snake_case.json")
    root, child = trace.spans
    assert root.parent_id is None  # "AAAAAAAAAAA=" is an all-zero 8-byte id
    assert child.parent_id == "3333333333333333"
    assert root.attributes == {"n": 7} and root.service == "grafana"
    assert root.start_ns == 1_767_225_600_000_000_000


def test_jaeger_api_v3_result_wrapper() -> None:
    (trace,) = read_traces(DATA / "readers_jaeger_v3_result.json")
    assert trace.trace_id == "5b8efff798038103d269b633813fc60c" and len(trace.spans) == 2


def test_result_frames_one_per_line_are_read_as_jsonl(tmp_path: Path) -> None:
    doc = json.loads((DATA / "readers_otlp_document.json").read_text())
    lines = [json.dumps({"result": {"resourceSpans": [rs]}}) for rs in doc["resourceSpans"]]
    path = tmp_path / "stream.json"
    path.write_text("\n".join(lines) + "\n")
    assert sorted(len(t.spans) for t in read_traces(path)) == [1, 2]


def test_format_can_be_forced_and_unknown_names_are_refused() -> None:
    assert len(list(read_traces(DATA / "readers_otlp_document.json", format="otlp-json"))) == 2
    from tracekit.errors import UnknownFormatError

    with pytest.raises(UnknownFormatError, match="unknown format 'csv'"):
        list(read_traces(DATA / "readers_otlp_document.json", format="csv"))


def test_enum_names_numbers_as_strings_and_unknown_values(tmp_path: Path) -> None:
    spans = [
        {
            "traceId": "ab" * 16,
            "spanId": f"{i:016x}",
            "name": f"s{i}",
            "kind": kind,
            "status": {"code": code},
            "startTimeUnixNano": "1",
            "endTimeUnixNano": "2",
        }
        for i, (kind, code) in enumerate(
            [("SPAN_KIND_PRODUCER", "STATUS_CODE_OK"), ("5", 1), (42, "WEIRD"), ("server", 2)]
        )
    ]
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}))
    (trace,) = read_traces(path)
    assert [s.kind for s in trace.spans] == [
        SpanKind.PRODUCER,
        SpanKind.CONSUMER,
        SpanKind.UNSPECIFIED,
        SpanKind.SERVER,
    ]
    assert [s.status for s in trace.spans] == [
        StatusCode.OK,
        StatusCode.OK,
        StatusCode.UNSET,
        StatusCode.ERROR,
    ]
    assert all(s.service == "unknown" for s in trace.spans)


def test_concatenated_pretty_printed_documents(tmp_path: Path) -> None:
    """``jq . traces.jsonl > pretty.json`` writes the lines as pretty-printed documents in a row."""
    text = (DATA / "readers_otlp_collector.jsonl").read_text()
    path = tmp_path / "pretty.json"
    path.write_text("".join(json.dumps(json.loads(x), indent=2) + "\n" for x in text.splitlines()))
    assert sorted(len(t.spans) for t in read_traces(path)) == [2, 3]


def _b64(hex_id: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_id)).decode()


@pytest.mark.parametrize(
    "repair",
    [
        pytest.param(lambda s: s.update(spanId=s["spanId"].upper()), id="upper-case-span-id"),
        pytest.param(lambda s: s.update(traceId=s["traceId"].upper()), id="upper-case-trace-id"),
        pytest.param(lambda s: s.update(spanId=_b64(s["spanId"])), id="base64-span-id"),
        pytest.param(lambda s: s.update(parentSpanId="0000000000000000"), id="all-zero-parent"),
        pytest.param(lambda s: s.update(parentSpanId=""), id="empty-parent"),
    ],
)
def test_lines_with_ids_to_repair_read_like_canonical_ones(tmp_path: Path, repair) -> None:
    """A line whose ids are all canonical is converted without per-span checks; an id spelled
    another way sends its line through the per-span path. Both give the same traces."""
    import msgspec

    def line(trace: int, repaired: bool) -> str:
        spans = []
        for i in range(4):
            span = {
                "traceId": f"abcdef{trace:026x}",
                "spanId": f"ab{trace:06x}{i:08x}",
                "name": f"s{i}",
                "startTimeUnixNano": str(100 + i),
                "endTimeUnixNano": str(200 - i),
            }
            if i:
                span["parentSpanId"] = f"ab{trace:06x}{i - 1:08x}"
            spans.append(span)
        if repaired:
            repair(spans[0])  # the root: its parent id may become empty or all zeros
        return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]})

    def read(repaired: bool) -> list:
        path = tmp_path / ("repaired" if repaired else "plain") / "t.jsonl"
        path.parent.mkdir()
        path.write_text("".join(line(t, repaired and t == 2) + "\n" for t in (1, 2, 3)))
        return [msgspec.to_builtins(t) for t in read_traces(path)]

    plain = read(False)
    assert len(plain) == 3 and all(len(t["spans"]) == 4 and not t["warnings"] for t in plain)
    assert [{**t, "source": ""} for t in read(True)] == [{**t, "source": ""} for t in plain]


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_otlp_span_without_a_start_time_is_dropped_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: str
) -> None:
    # It read as 0: a child sat in 1970 under a 2025 root, silently off the critical path, and a
    # root made a 55-year trace. Now a missing or negative startTimeUnixNano drops the span with a
    # warning naming the field, and a zero one in a trace with absolute times drops it with a warning
    # saying so, in one process and in parallel workers alike.
    monkeypatch.setenv("TRACEKIT_PARALLEL_MIN_BYTES", "1")
    result = run(str(DATA / "readers_otlp_child_without_start.json"), "--format", "json", "--jobs", jobs)
    assert result.exit_code == 0, result.stderr
    (trace,) = json.loads(result.stdout)["traces"]
    assert trace["span_count"] == 1 and trace["duration_ms"] == 10.0
    assert "spans[1]: Object missing required field `startTimeUnixNano`" in result.stderr

    doc = json.loads((DATA / "readers_otlp_child_without_start.json").read_text())
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans[1]["startTimeUnixNano"] = "-5"
    spans.append({**spans[0], "spanId": "cccccccccccccccc", "startTimeUnixNano": 0})
    path = tmp_path / "zero_and_negative.json"
    path.write_text(json.dumps(doc))
    result = run(str(path), "--format", "json", "--jobs", jobs)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["summary"]["spans"] == 1
    assert result.stderr.count("startTimeUnixNano: Expected `int` >= 0") == 1, result.stderr
    # A start of 0 beside absolute times means "not set" (a consistently relative trace keeps it).
    assert result.stderr.count("1 span(s) dropped: start time 0 (not set)") == 1, result.stderr

    # The only span without a start: nothing usable, one line naming the file and the field.
    one_line_error(
        run(str(DATA / "readers_otlp_root_without_start.json"), "--format", "json"), "startTimeUnixNano"
    )

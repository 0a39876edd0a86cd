"""Jaeger JSON and Zipkin v2 reading: references, tags, processes, shared spans, missing timestamps."""

from __future__ import annotations

import json
from pathlib import Path

from tests.analyze.cli_run import one_line_error, run
from tests.analyze.truth import to_jaeger, to_zipkin
from tracekit.analyze.model import RefType, SpanKind, StatusCode
from tracekit.analyze.readers import read_traces

DATA = Path(__file__).parents[1] / "data"


def spans_by_name(trace):
    return {s.name: s for s in trace.spans}


def test_jaeger_query_api_document() -> None:
    (trace,) = read_traces(DATA / "readers_jaeger_data.json")
    assert trace.trace_id == "000000000000000018231c31672495c6"  # 64-bit id left-padded
    s = spans_by_name(trace)
    root = s["HTTP GET /dispatch"]
    assert root.parent_id is None and root.kind is SpanKind.SERVER
    assert root.start_ns == 1_767_225_600_000_000_000 and root.duration_ns == 1_000_000  # µs -> ns
    assert root.service == "frontend"
    assert root.resource == {"hostname": "h1", "k8s.pod.name": "frontend-1", "service.name": "frontend"}
    assert root.attributes["http.status_code"] == 200
    customer = s["HTTP GET /customer"]
    assert customer.kind is SpanKind.CLIENT and customer.status is StatusCode.ERROR  # error: true (bool)
    (log,) = customer.events
    assert log.name == "retry" and log.attributes["attempt"] == 2 and log.time_ns == root.start_ns + 20_000
    publish = s["publish"]
    assert publish.status is StatusCode.ERROR  # error: "true" (string)
    assert publish.parent_id == root.span_id and publish.ref_type is RefType.FOLLOWS_FROM
    assert publish.kind is SpanKind.UNSPECIFIED and publish.service == "redis"
    redis = s["redis GET"]
    # the first CHILD_OF wins over an earlier FOLLOWS_FROM, which becomes a link
    assert redis.parent_id == customer.span_id and redis.ref_type is RefType.CHILD_OF
    assert [(lk.span_id, lk.attributes["ref_type"]) for lk in redis.links] == [
        (publish.span_id, "FOLLOWS_FROM")
    ]
    assert redis.status is StatusCode.ERROR and redis.status_message == "timeout"  # otel.status_code
    assert trace.warnings == []


def test_jaeger_bare_trace_object_with_non_hex_ids() -> None:
    (trace,) = read_traces(DATA / "readers_jaeger_bare_nonhex.json")
    assert len(trace.spans) == 4 and len(trace.trace_id) == 32
    assert all(len(s.span_id) == 16 for s in trace.spans)
    ids = {s.span_id for s in trace.spans}
    assert sum(s.parent_id is None for s in trace.spans) == 1
    assert all(s.parent_id in ids for s in trace.spans if s.parent_id)  # hashed consistently
    assert any("not hex" in w for w in trace.warnings)


def test_zipkin_shared_span_becomes_a_server_child_of_its_client() -> None:
    (trace,) = read_traces(DATA / "readers_zipkin_spans.json")
    assert trace.trace_id == "5aab74dbb904746bb33447baae403ed6"  # 128-bit
    by_kind = {(s.name, s.kind): s for s in trace.spans}
    client = by_kind[("get /api", SpanKind.CLIENT)]
    server = by_kind[("get /api", SpanKind.SERVER)]
    assert client.span_id == "0000000000000002" and server.span_id != client.span_id
    assert server.parent_id == client.span_id
    assert (
        server.service == "backend" and server.status is StatusCode.ERROR and server.status_message == "500"
    )
    query = by_kind[("query", SpanKind.CLIENT)]
    assert query.parent_id == server.span_id  # a child of the shared id ran in the server
    assert query.attributes["sql.query"] == "select 1"  # merged from the half without a timestamp
    assert query.attributes["peer.service"] == "mysql"
    assert query.start_ns == 1_767_225_600_001_500_000  # float µs in exponent form
    assert server.start_ns == 1_767_225_600_001_200_000
    assert client.attributes["network.peer.port"] == 8080
    assert [e.name for e in client.events] == ["ws"]
    root = by_kind[("get /", SpanKind.SERVER)]
    assert root.parent_id is None and root.resource == {"service.name": "frontend", "host.ip": "10.0.0.1"}
    assert len(trace.spans) == 4  # "lost" had no timestamp and no partner: dropped
    assert any("merged" in w for w in trace.warnings) and any("dropped" in w for w in trace.warnings)


def test_zipkin_array_of_traces() -> None:
    traces = list(read_traces(DATA / "readers_zipkin_traces.json"))
    assert sorted(len(t.spans) for t in traces) == [1, 2]
    solo = next(t for t in traces if len(t.spans) == 1)
    assert solo.trace_id == "00000000000000000000000000000abc" and solo.spans[0].span_id == "0000000000000abc"
    assert solo.spans[0].kind is SpanKind.INTERNAL  # no kind: a local span


def test_jaeger_file_with_one_bad_span_keeps_the_others(tmp_path: Path, built) -> None:
    # One span with `"duration": "5"` used to fail the whole document (exit 2, nothing analysed).
    doc = to_jaeger([b.spans for b in built])
    doc["data"][1]["spans"][-1]["duration"] = "5"
    path = tmp_path / "jaeger.json"
    path.write_text(json.dumps(doc))
    result = run(str(path), "--format", "json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["summary"]["traces"] == 2
    assert report["summary"]["spans"] == len(built[0].spans) + len(built[1].spans) - 1
    assert "trace 2, span" in result.stderr and "field duration" in result.stderr


def test_jaeger_file_with_a_bad_process_is_still_one_line(tmp_path: Path, built) -> None:
    doc = to_jaeger([built[0].spans])
    next(iter(doc["data"][0]["processes"].values()))["serviceName"] = 5
    path = tmp_path / "jaeger.json"
    path.write_text(json.dumps(doc))
    one_line_error(run(str(path)), "jaeger.json", "serviceName")


def test_jaeger_span_without_a_start_time_is_dropped_with_a_warning(tmp_path: Path, built) -> None:
    # It was placed at 0 (a 1970 span; as a root, a 55-year trace); now dropped, as in OTLP.
    doc = to_jaeger([built[0].spans])
    spans = doc["data"][0]["spans"]
    del spans[-1]["startTime"]
    spans[-2]["startTime"] = 0
    path = tmp_path / "jaeger.json"
    path.write_text(json.dumps(doc))
    result = run(str(path), "--format", "json")
    assert result.exit_code == 0, result.stderr
    (trace,) = json.loads(result.stdout)["traces"]
    assert trace["span_count"] == len(built[0].spans) - 2
    assert sum("dropped: field startTime" in w for w in trace["warnings"]) == 1, trace["warnings"]
    assert sum("dropped: start time 0 (not set)" in w for w in trace["warnings"]) == 1, trace["warnings"]


def _zipkin_with_a_bad_timestamp(built) -> list[dict]:
    """Two traces as a Zipkin span array; the second span of the first has its timestamp as text."""
    spans = to_zipkin([*built[0].spans, *built[1].spans])
    spans[1]["timestamp"] = "soon"
    return spans


def test_zipkin_span_with_a_bad_field_is_dropped_and_the_rest_is_read(tmp_path: Path, built) -> None:
    """As in Jaeger and OTLP: one span whose timestamp is text costs that span (with a warning
    naming it and the field), not the rest of the document, the rest of its line, or its trace.
    The same whether the document is split in one pass, scanned, or one line of a JSONL file."""
    spans = _zipkin_with_a_bad_timestamp(built)
    total = len(built[0].spans) + len(built[1].spans)
    document = tmp_path / "spans.json"
    document.write_text(json.dumps(spans))
    lines = tmp_path / "spans.jsonl"
    lines.write_text(json.dumps(spans[:3]) + "\n" + json.dumps(spans[3:]) + "\n")
    for source, place in ((document, ""), (lines, ":1")):
        warnings: list[str] = []
        traces = list(read_traces(source, on_warning=warnings.append))
        assert sum(len(t.spans) for t in traces) == total - 1, source
        assert len(traces) == 2
        # the decoder's own words after the field are its release's: not compared
        assert len(warnings) == 1, warnings
        assert warnings[0].startswith(f"{source}{place}: Zipkin v2 JSON: span 2 dropped: field timestamp: ")
    with document.open("rb") as stream:  # a stream of unknown size is scanned, not split whole
        scanned = list(read_traces(stream, name="spans.json", on_warning=warnings.append))
    assert sum(len(t.spans) for t in scanned) == total - 1
    result = run(str(document), "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["summary"]["spans"] == total - 1
    assert "span 2 dropped: field timestamp" in result.stderr


def test_zipkin_trace_element_with_a_bad_span_keeps_its_other_spans(tmp_path: Path, built) -> None:
    """``GET /api/v2/traces`` form (an array of traces): the bad span is named by trace and span."""
    spans = _zipkin_with_a_bad_timestamp(built)
    n = len(built[0].spans)
    path = tmp_path / "traces.json"
    path.write_text(json.dumps([spans[:n], spans[n:]]))
    warnings: list[str] = []
    traces = list(read_traces(path, on_warning=warnings.append))
    assert sorted(len(t.spans) for t in traces) == sorted([n - 1, len(built[1].spans)])
    assert len(warnings) == 1 and "trace 1, span 2 dropped: field timestamp" in warnings[0]

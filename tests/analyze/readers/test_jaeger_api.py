"""Jaeger query API v3 as a source, against a real HTTP server on loopback (pytest-httpserver)."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tests.analyze.cli_run import one_line_error, run
from tests.analyze.truth import request_trace, to_otlp
from tracekit.analyze.readers.jaeger_api import fetch_traces, parse_lookback, split_frames
from tracekit.errors import TraceFormatError

DATA = Path(__file__).parents[1] / "data"
DOC = json.loads((DATA / "readers_otlp_document.json").read_text())
TID = "5b8efff798038103d269b633813fc60c"


def result(*resource_spans: dict) -> str:
    return json.dumps({"result": {"resourceSpans": list(resource_spans)}})


def test_search_by_service_sends_the_v3_query(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v3/traces", method="GET").respond_with_data(
        result(*DOC["resourceSpans"]), content_type="application/json"
    )
    traces = list(fetch_traces(httpserver.url_for("/"), service="frontend", lookback="2h", limit=5))
    assert sorted(len(t.spans) for t in traces) == [1, 2]
    assert all(t.source == f"jaeger:{httpserver.url_for('/').rstrip('/')}" for t in traces)
    (request, _), *_ = httpserver.log
    q = request.args
    assert q["query.service_name"] == "frontend" and q["query.search_depth"] == "5"
    t_min = datetime.fromisoformat(q["query.start_time_min"].replace("Z", "+00:00"))
    t_max = datetime.fromisoformat(q["query.start_time_max"].replace("Z", "+00:00"))
    assert t_max - t_min == timedelta(hours=2) and abs(datetime.now(UTC) - t_max) < timedelta(minutes=5)


def test_limit_is_applied_to_what_the_server_returns(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v3/traces").respond_with_data(result(*DOC["resourceSpans"]))
    assert len(list(fetch_traces(httpserver.url_for("/"), service="frontend", limit=1))) == 1


def test_get_one_trace_by_id_from_a_streamed_answer(httpserver: HTTPServer) -> None:
    first = DOC["resourceSpans"][0]
    # Two frames, concatenated and newline separated, the second for the same trace: merged.
    root_rs = json.loads(json.dumps(first))
    child_rs = json.loads(json.dumps(first))
    root_rs["scopeSpans"][0]["spans"] = root_rs["scopeSpans"][0]["spans"][:1]
    child_rs["scopeSpans"][0]["spans"] = child_rs["scopeSpans"][0]["spans"][1:]
    body = result(root_rs) + result(child_rs) + "\n"
    httpserver.expect_request(f"/api/v3/traces/{TID}").respond_with_data(body)
    (trace,) = fetch_traces(httpserver.url_for("/"), trace_id=TID.upper())
    assert trace.trace_id == TID and len(trace.spans) == 2


def test_not_found_names_the_url(httpserver: HTTPServer) -> None:
    error = json.dumps({"error": {"httpCode": 404, "message": "No traces found"}})
    httpserver.expect_request("/api/v3/traces").respond_with_data(error, status=404)
    with pytest.raises(TraceFormatError) as info:
        list(fetch_traces(httpserver.url_for("/"), service="nobody"))
    message = str(info.value)
    assert message.startswith(httpserver.url_for("/api/v3/traces"))
    assert "no traces of service 'nobody' in the last 1h found (No traces found)" in message


def test_server_error_is_one_line(httpserver: HTTPServer) -> None:
    error = json.dumps({"error": {"httpCode": 500, "message": "storage backend down"}})
    httpserver.expect_request(f"/api/v3/traces/{TID}").respond_with_data(error, status=500)
    with pytest.raises(TraceFormatError, match=r"/api/v3/traces/5b8e.*: HTTP 500: storage backend down$"):
        list(fetch_traces(httpserver.url_for("/"), trace_id=TID))


def test_an_unreadable_answer(httpserver: HTTPServer) -> None:
    httpserver.expect_request(f"/api/v3/traces/{TID}").respond_with_data("<html>proxy login</html>")
    with pytest.raises(TraceFormatError, match="unreadable answer"):
        list(fetch_traces(httpserver.url_for("/"), trace_id=TID))


def test_a_malformed_attribute_in_the_answer_names_its_field(httpserver: HTTPServer) -> None:
    """As in files: the bad attribute is dropped, its span kept, and the trace names the field."""
    rs = json.loads(json.dumps(DOC["resourceSpans"][0]))
    rs["scopeSpans"][0]["spans"][0]["attributes"] = [{"key": "n", "value": {"intValue": "many"}}]
    httpserver.expect_request(f"/api/v3/traces/{TID}").respond_with_data(result(rs))
    (trace,) = fetch_traces(httpserver.url_for("/"), trace_id=TID)
    assert len(trace.spans) == len(rs["scopeSpans"][0]["spans"])
    assert any(
        "field attributes[0].value.intValue: Expected `int | null`, got `str`; attribute 'n' dropped" in w
        for w in trace.warnings
    ), trace.warnings


def test_connection_refused_names_the_url() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TraceFormatError) as info:
        list(fetch_traces(f"http://127.0.0.1:{port}", service="x"))
    url = f"http://127.0.0.1:{port}/api/v3/traces"
    assert str(info.value) == f"{url}: cannot reach Jaeger: connection refused"


def test_arguments_are_checked() -> None:
    with pytest.raises(TraceFormatError, match="service name or a trace id"):
        list(fetch_traces("http://127.0.0.1:1"))
    with pytest.raises(TraceFormatError, match="invalid trace id"):
        list(fetch_traces("http://127.0.0.1:1", trace_id="not-hex"))
    with pytest.raises(TraceFormatError, match="invalid lookback"):
        list(fetch_traces("http://127.0.0.1:1", service="x", lookback="soon"))


def test_lookback_and_frame_splitting() -> None:
    assert parse_lookback("1h30m") == timedelta(minutes=90)
    assert parse_lookback("2d") == timedelta(days=2)
    assert list(split_frames(b'{"a":"}{\\""}\n{"b":{}}')) == [b'{"a":"}{\\""}', b'{"b":{}}']


def test_an_answer_past_the_size_cap_is_refused(httpserver: HTTPServer) -> None:
    """The answer is held whole while decoded: one without end must stop at the cap, in one line."""
    body = result(DOC["resourceSpans"][0])
    httpserver.expect_request(f"/api/v3/traces/{TID}").respond_with_data(body * 3)
    with pytest.raises(TraceFormatError) as info:
        list(fetch_traces(httpserver.url_for("/"), trace_id=TID, max_bytes=2 * len(body)))
    assert f"answer larger than {2 * len(body):,} bytes; ask for fewer traces" in str(info.value)
    assert str(info.value).startswith(httpserver.url_for(f"/api/v3/traces/{TID}"))
    # Under the cap the same answer reads.
    (trace,) = fetch_traces(httpserver.url_for("/"), trace_id=TID, max_bytes=3 * len(body))
    assert trace.trace_id == TID


@pytest.mark.parametrize(
    ("status", "body", "content_type", "needle"),
    [
        (500, "<html>\n<body>\n<h1>Internal\nServer Error</h1></body></html>", "text/html", "HTTP 500"),
        (502, "", "text/plain", "HTTP 502"),
        (200, "<html>\n<body>login page</body>\n</html>", "text/html", "unreadable answer"),
        (200, '{"result": {"resourceSpans": [', "application/json", "unreadable answer"),
        (200, "{}", "application/json", "unexpected answer"),
        (200, '{"result": {}}', "application/json", "no traces"),
        (200, '{"result": {"resourceSpans": []}}', "application/json", "no traces"),
        (200, "null", "application/json", ""),
        (200, "[]", "application/json", ""),
        (200, '"text"', "application/json", ""),
        (200, '{"result": {"resourceSpans": "x"}}', "application/json", ""),
        (200, '{"error": "boom\\nsecond line"}', "application/json", "boom second line"),
        (200, '{"error": {"message": 5}}', "application/json", ""),
        (200, b"\xff\xfe\x00garbage", "application/json", ""),
        (404, '{"error": {"httpCode": 404, "message": "No\\ntraces"}}', "application/json", "no traces"),
    ],
)
def test_jaeger_odd_answers_are_one_line(
    httpserver: HTTPServer, status: int, body: str | bytes, content_type: str, needle: str
) -> None:
    httpserver.expect_request("/api/v3/traces").respond_with_data(
        body, status=status, content_type=content_type
    )
    result = run("--jaeger", httpserver.url_for("/"), "--service", "shop", "--format", "json")
    line = one_line_error(result, "/api/v3/traces")
    assert needle.lower() in line.lower()


def test_jaeger_many_traces_respects_limit(httpserver: HTTPServer) -> None:
    traces = [request_trace(300 + i) for i in range(30)]
    body = {"result": to_otlp([s for t in traces for s in t.spans])}
    httpserver.expect_request("/api/v3/traces").respond_with_json(body)
    result = run("--jaeger", httpserver.url_for("/"), "--service", "shop", "--limit", "7", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["summary"]["traces"] == 7


def test_jaeger_empty_protojson_frame_is_no_traces(httpserver: HTTPServer, built) -> None:
    # protojson omits an empty resourceSpans, so a streamed empty frame is `{"result": {}}`; next to
    # a frame with spans it used to stop the run ("no resourceSpans (not an OTLP traces document)").
    frames = [{"result": {}}, {"result": to_otlp(built[0].spans)}, {"result": {}}]
    httpserver.expect_request("/api/v3/traces").respond_with_data(
        "\n".join(json.dumps(f) for f in frames), content_type="application/json"
    )
    result = run("--jaeger", httpserver.url_for("/"), "--service", "shop", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert [t["trace_id"] for t in json.loads(result.stdout)["traces"]] == [built[0].trace_id]

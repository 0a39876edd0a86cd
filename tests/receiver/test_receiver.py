"""The OTLP/HTTP receiver against the real OpenTelemetry exporter and hostile bodies, on loopback."""

from __future__ import annotations

import gzip
import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from tracekit.receiver import Limits, Receiver, codec

PB = {"Content-Type": "application/x-protobuf"}
JS = {"Content-Type": "application/json"}


def make_spans() -> list[ReadableSpan]:
    """A small trace exercising every field the encoder writes: kinds, all value types, events, links."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "round-trip", "k8s.pod.name": "p-1"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests.receiver", "1.2.3")
    with tracer.start_as_current_span("GET /products", kind=SpanKind.SERVER) as root:
        root.set_attributes(
            {
                "http.response.status_code": 200,
                "big": 2**62 + 7,
                "ratio": 0.125,
                "limit": float("inf"),
                "flag": True,
                "tags": ["a", "b"],
                "ints": [1, 2, 3],
                "unicode": "é</script>",
            }
        )
        root.add_event("cache miss", {"key": "products"})
        link = Link(root.get_span_context(), {"why": "self"})
        with tracer.start_as_current_span("SELECT products", kind=SpanKind.CLIENT, links=[link]) as child:
            child.set_attribute("db.system", "sqlite")
            child.set_status(Status(StatusCode.ERROR, "database is locked"))
        with tracer.start_as_current_span("render", kind=SpanKind.INTERNAL):
            pass
    provider.shutdown()
    spans = list(memory.get_finished_spans())
    assert len(spans) == 3
    return spans


def file_requests(path: Path) -> list[codec.ExportTraceServiceRequest]:
    return [codec.from_otlp_json(line) for line in path.read_bytes().splitlines()]


@pytest.fixture
def receiver(tmp_path: Path):
    with Receiver("127.0.0.1:0", tmp_path / "out.jsonl", track_traces=True) as r:
        yield r


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip], ids=["plain", "gzip"])
def test_protobuf_exporter_round_trips_bit_exact(tmp_path: Path, compression: Compression) -> None:
    spans = make_spans()
    out = tmp_path / "out.jsonl"
    with Receiver("127.0.0.1:0", out) as receiver:
        exporter = OTLPSpanExporter(endpoint=receiver.traces_url, compression=compression)
        assert exporter.export(spans) == SpanExportResult.SUCCESS
        exporter.shutdown()
        assert receiver.spans == 3
    [written] = file_requests(out)
    assert written == encode_spans(spans)
    assert written.SerializeToString(deterministic=True) == encode_spans(spans).SerializeToString(
        deterministic=True
    )


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_json_round_trips_bit_exact(tmp_path: Path, gzipped: bool) -> None:
    spans = make_spans()
    expected = encode_spans(spans)
    body = codec.to_otlp_json(expected)
    headers = dict(JS)
    if gzipped:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    out = tmp_path / "out.jsonl"
    with Receiver("127.0.0.1:0", out) as receiver:
        response = requests.post(receiver.traces_url, data=body, headers=headers, timeout=10)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/json"
        assert response.json() == {}
    [written] = file_requests(out)
    assert written == expected


def test_file_lines_are_collector_style_otlp_json(tmp_path: Path) -> None:
    spans = make_spans()
    out = tmp_path / "out.jsonl"
    with Receiver("127.0.0.1:0", out) as receiver:
        assert OTLPSpanExporter(endpoint=receiver.traces_url).export(spans) == SpanExportResult.SUCCESS
    [line] = out.read_text().splitlines()
    data = json.loads(line)
    [resource_spans] = data["resourceSpans"]
    [scope_spans] = resource_spans["scopeSpans"]
    assert scope_spans["scope"] == {"name": "tests.receiver", "version": "1.2.3"}
    by_name = {s["name"]: s for s in scope_spans["spans"]}
    root, child = by_name["GET /products"], by_name["SELECT products"]
    context = next(s for s in spans if s.name == "GET /products").context
    assert root["traceId"] == f"{context.trace_id:032x}"
    assert root["spanId"] == f"{context.span_id:016x}"
    assert "parentSpanId" not in root
    assert child["parentSpanId"] == root["spanId"]
    assert child["links"][0]["spanId"] == root["spanId"]
    assert root["kind"] == 2 and child["kind"] == 3
    assert child["status"] == {"code": 2, "message": "database is locked"}
    assert isinstance(root["startTimeUnixNano"], str)
    attrs = {a["key"]: a["value"] for a in root["attributes"]}
    assert attrs["big"] == {"intValue": str(2**62 + 7)}
    assert attrs["flag"] == {"boolValue": True}
    assert attrs["tags"] == {"arrayValue": {"values": [{"stringValue": "a"}, {"stringValue": "b"}]}}


def test_fast_json_conversion_matches_json_format() -> None:
    """The receiver's OTLP converter writes exactly what protobuf's json_format writes (ids in hex)."""
    request = encode_spans(make_spans())
    span = request.resource_spans[0].scope_spans[0].spans[0]
    extra = span.attributes.add()
    extra.key, extra.value.double_value = "nan", float("nan")
    blob = span.attributes.add()
    blob.key, blob.value.bytes_value = "blob", b"\x00\xffbytes"
    span.trace_state = "vendor=1"
    assert codec.to_otlp_dict(request) == codec.to_otlp_dict_reference(request)


def test_spec_example_json_with_hex_ids(receiver: Receiver) -> None:
    """The OTLP/JSON example shape from the specification: hex ids, integer enum, string int64."""
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "curl"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "manual"},
                        "spans": [
                            {
                                "traceId": "5B8EFFF798038103D269B633813FC60C".lower(),
                                "spanId": "EEE19B7EC3C1B174".lower(),
                                "parentSpanId": "EEE19B7EC3C1B173".lower(),
                                "name": "I'm a server span",
                                "startTimeUnixNano": "1544712660000000000",
                                "endTimeUnixNano": "1544712661000000000",
                                "kind": 2,
                                "attributes": [{"key": "my.attr", "value": {"stringValue": "some value"}}],
                                "unknownFieldFromANewerVersion": 1,
                            }
                        ],
                    }
                ],
            }
        ]
    }
    response = requests.post(receiver.traces_url, json=body, timeout=10)
    assert response.status_code == 200, response.text
    assert receiver.trace_ids == {"5b8efff798038103d269b633813fc60c"}
    span = codec.to_otlp_dict(codec.decode(json.dumps(body).encode(), codec.JSON))["resourceSpans"][0][
        "scopeSpans"
    ][0]["spans"][0]
    assert span["spanId"] == "eee19b7ec3c1b174" and span["parentSpanId"] == "eee19b7ec3c1b173"


def _status(response: requests.Response) -> status_pb2.Status:
    status = status_pb2.Status()
    if response.headers["Content-Type"] == "application/json":
        data = response.json()
        status.code, status.message = data.get("code", 0), data.get("message", "")
    else:
        status.ParseFromString(response.content)
    return status


def _still_serving(receiver: Receiver) -> None:
    exporter = OTLPSpanExporter(endpoint=receiver.traces_url)
    assert exporter.export(make_spans()) == SpanExportResult.SUCCESS
    exporter.shutdown()


def test_oversized_body_gets_413_and_the_receiver_keeps_serving(tmp_path: Path) -> None:
    limits = Limits(max_body_bytes=4096, max_decompressed_bytes=8192)
    with Receiver("127.0.0.1:0", tmp_path / "o.jsonl", limits=limits) as receiver:
        response = requests.post(receiver.traces_url, data=b"\0" * 10_000, headers=PB, timeout=10)
        assert response.status_code == 413
        status = _status(response)
        assert status.code == 8 and "4096" in status.message
        _still_serving(receiver)
        assert receiver.refused == 1


def test_gzip_bomb_is_refused_without_inflating_it(tmp_path: Path) -> None:
    bomb = gzip.compress(b"\0" * (50 * 1024 * 1024), compresslevel=9)  # 50 MiB -> ~50 KiB
    assert len(bomb) < 100_000
    limits = Limits(max_body_bytes=1024 * 1024, max_decompressed_bytes=1024 * 1024)
    with Receiver("127.0.0.1:0", tmp_path / "o.jsonl", limits=limits) as receiver:
        headers = {**PB, "Content-Encoding": "gzip"}
        response = requests.post(receiver.traces_url, data=bomb, headers=headers, timeout=10)
        assert response.status_code == 413
        assert "decompressed" in _status(response).message
        _still_serving(receiver)


@pytest.mark.parametrize(
    ("body", "headers", "expected"),
    [
        (b"\xff\xff\xff\xff garbage", PB, 400),
        (b"{not json", JS, 400),
        (b"[1, 2]", JS, 400),
        (b'{"resourceSpans": 3}', JS, 400),
        (
            b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"xyz","spanId":"00"}]}]}]}',
            JS,
            400,
        ),
        (
            b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102","spanId":"0102030405060708"}]}]}]}',
            JS,
            400,
        ),
        (b"not gzip at all", {**PB, "Content-Encoding": "gzip"}, 400),
        (gzip.compress(b"x" * 1000)[:-20], {**PB, "Content-Encoding": "gzip"}, 400),
        (b"{}", {"Content-Type": "text/plain"}, 415),
        (b"{}", {"Content-Type": "application/json", "Content-Encoding": "br"}, 415),
        (b"", {}, 415),
    ],
    ids=[
        "bad-protobuf",
        "bad-json",
        "json-array",
        "json-wrong-type",
        "non-hex-id",
        "short-id",
        "not-gzip",
        "truncated-gzip",
        "text-plain",
        "brotli",
        "no-content-type",
    ],
)
def test_bad_bodies_get_4xx_and_the_receiver_keeps_serving(
    receiver: Receiver, body: bytes, headers: dict[str, str], expected: int
) -> None:
    response = requests.post(receiver.traces_url, data=body, headers=headers, timeout=10)
    assert response.status_code == expected, response.content
    assert _status(response).message
    _still_serving(receiver)
    assert receiver.refused == 1


def test_wrong_path_and_method(receiver: Receiver) -> None:
    metrics = receiver.endpoint + "/v1/metrics"
    assert requests.post(metrics, data=b"", headers=PB, timeout=10).status_code == 404
    assert requests.get(receiver.traces_url, timeout=10).status_code == 405
    _still_serving(receiver)


def test_concurrent_exporters_write_whole_lines(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    spans = make_spans()
    with Receiver("127.0.0.1:0", out) as receiver:

        def send() -> None:
            exporter = OTLPSpanExporter(endpoint=receiver.traces_url)
            for _ in range(10):
                assert exporter.export(spans) == SpanExportResult.SUCCESS
            exporter.shutdown()

        threads = [threading.Thread(target=send) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert receiver.wait_for(lambda r: r.spans == 6 * 10 * 3, timeout=10)
    written = file_requests(out)
    assert len(written) == 60
    assert all(w == encode_spans(spans) for w in written)


def test_forward_sends_the_same_spans_on(tmp_path: Path) -> None:
    spans = make_spans()
    with Receiver("127.0.0.1:0", tmp_path / "downstream.jsonl") as downstream:
        with Receiver("127.0.0.1:0", tmp_path / "local.jsonl", forward=downstream.endpoint) as front:
            assert OTLPSpanExporter(endpoint=front.traces_url).export(spans) == SpanExportResult.SUCCESS
        # front.stop() drained its forward queue; the downstream answered before that returned.
        assert front.forwarder is not None and front.forwarder.sent == 1
        assert downstream.spans == 3
    assert file_requests(tmp_path / "downstream.jsonl") == file_requests(tmp_path / "local.jsonl")


def test_forward_sends_json_requests_on_as_protobuf(tmp_path: Path) -> None:
    """An OTLP/JSON request is forwarded as protobuf; the downstream writes the very same line."""
    expected = encode_spans(make_spans())
    body = codec.to_otlp_json(expected)
    with Receiver("127.0.0.1:0", tmp_path / "downstream.jsonl") as downstream:
        with Receiver("127.0.0.1:0", tmp_path / "local.jsonl", forward=downstream.endpoint) as front:
            response = requests.post(front.traces_url, data=body, headers=JS, timeout=10)
            assert response.status_code == 200
        assert front.forwarder is not None and front.forwarder.sent == 1
    assert (
        (tmp_path / "local.jsonl").read_bytes()
        == (tmp_path / "downstream.jsonl").read_bytes()
        == body + b"\n"
    )


def _start_collect(out: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracekit", "collect", "--listen", "127.0.0.1:0", "--out", str(out)],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert "listening on " in line, line
    url = line.split("listening on ", 1)[1].split(",", 1)[0]
    return proc, url


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_collect_command_flushes_and_closes_on_signal(tmp_path: Path, sig: signal.Signals) -> None:
    out = tmp_path / "collected.jsonl"
    proc, url = _start_collect(out)
    try:
        spans = make_spans()
        assert OTLPSpanExporter(endpoint=url).export(spans) == SpanExportResult.SUCCESS
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "3 spans in 1 requests" in err
    assert file_requests(out) == [encode_spans(spans)]


@pytest.mark.slow
def test_collect_rejects_a_bad_listen_address() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tracekit", "collect", "--listen", "nowhere:http"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "--listen" in result.stderr and "Traceback" not in result.stderr

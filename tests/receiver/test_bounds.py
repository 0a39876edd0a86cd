"""The receiver under hostile traffic, on real loopback sockets: every bound holds, the next client is
served, and the answers carry the statuses OTLP clients act on."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.sdk.trace.export import SpanExportResult

from tests.receiver.test_receiver import JS, PB, _status, file_requests, make_spans
from tracekit.receiver import Limits, Receiver, codec


def _exporter_works(receiver: Receiver) -> None:
    exporter = OTLPSpanExporter(endpoint=receiver.traces_url, timeout=10)
    assert exporter.export(make_spans()) == SpanExportResult.SUCCESS
    exporter.shutdown()


def _connect(receiver: Receiver) -> socket.socket:
    return socket.create_connection(receiver.address, timeout=30)


def _read_answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _headers(length: int, media: str = "application/x-protobuf") -> bytes:
    return (
        f"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: {media}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def test_a_stalled_body_is_cut_off_by_the_body_timeout(tmp_path: Path) -> None:
    limits = Limits(body_timeout=0.5)
    with Receiver("127.0.0.1:0", tmp_path / "o.jsonl", limits=limits) as receiver:
        with _connect(receiver) as sock:
            sock.sendall(_headers(1000) + b"\x0a\x02")  # 2 of 1,000 bytes, then nothing
            answer = _read_answer(sock)
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
        assert b"Connection: close" in answer
        assert receiver.last_refusal == "408 body not received within 0.5 s (got 2 bytes)"
        _exporter_works(receiver)
        assert receiver.refused == 1


def test_headers_that_never_finish_and_silent_connections_are_closed(tmp_path: Path) -> None:
    limits = Limits(header_timeout=0.5, idle_timeout=0.5)
    with Receiver("127.0.0.1:0", tmp_path / "o.jsonl", limits=limits) as receiver:
        with _connect(receiver) as slow, _connect(receiver) as silent:
            slow.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n")  # no blank line, ever
            assert _read_answer(slow) == b""
            assert _read_answer(silent) == b""
        _exporter_works(receiver)


def test_at_the_connection_cap_the_longest_idle_connection_makes_room(tmp_path: Path) -> None:
    limits = Limits(max_connections=8)
    with Receiver("127.0.0.1:0", tmp_path / "o.jsonl", limits=limits) as receiver:
        idle = [_connect(receiver) for _ in range(20)]
        try:
            _exporter_works(receiver)
            server = receiver.http_server
            assert server is not None
            assert server.connection_cap == 8
            assert server.evicted >= 20 - 8 + 1 - 1  # all but the cap's worth, and room for the exporter
            # The oldest were closed, by the server: reading them gives end-of-file.
            idle[0].settimeout(10)
            assert idle[0].recv(1) == b""
        finally:
            for sock in idle:
                sock.close()


def test_a_client_resetting_mid_body_costs_nothing(tmp_path: Path) -> None:
    with Receiver("127.0.0.1:0", tmp_path / "o.jsonl") as receiver:
        for _ in range(5):
            sock = _connect(receiver)
            sock.sendall(_headers(100_000) + b"\0" * 10)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")  # close = RST
            sock.close()
        _exporter_works(receiver)
        assert receiver.budget.used == 0
        assert receiver.refused == 0  # a vanished client is not a refusal


def _eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll a condition the receiver does not signal (its budget) until it holds or ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_the_memory_budget_answers_503_with_retry_after_and_frees_up(tmp_path: Path) -> None:
    budget = 16 * 1024 * 1024
    expected = encode_spans(make_spans())
    body = expected.SerializeToString()
    with Receiver("127.0.0.1:0", tmp_path / "o.jsonl", limits=Limits(memory_budget_bytes=budget)) as receiver:
        holder = _connect(receiver)
        # A request whose body is announced but not sent holds its size from the budget meanwhile,
        # leaving less than decoding the next request is charged (20 times its size).
        holder.sendall(_headers(budget - 10 * len(body)))
        assert _eventually(lambda: receiver.budget.used == budget - 10 * len(body))
        response = requests.post(receiver.traces_url, data=body, headers=PB, timeout=10)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "1"
        status = _status(response)
        assert status.code == 14  # UNAVAILABLE: exporters retry
        assert "memory budget exhausted" in status.message
        holder.close()
        assert _eventually(lambda: receiver.budget.used == 0)
        response = requests.post(receiver.traces_url, data=body, headers=PB, timeout=10)
        assert response.status_code == 200, response.content
    assert file_requests(tmp_path / "o.jsonl") == [expected]


def test_a_multi_member_gzip_body_is_read_whole(tmp_path: Path) -> None:
    expected = encode_spans(make_spans())
    body = expected.SerializeToString()
    cut = len(body) // 2
    members = gzip.compress(body[:cut]) + gzip.compress(body[cut:])  # what `cat a.gz b.gz` gives
    with Receiver("127.0.0.1:0", tmp_path / "o.jsonl") as receiver:
        headers = {**PB, "Content-Encoding": "gzip"}
        response = requests.post(receiver.traces_url, data=members, headers=headers, timeout=10)
        assert response.status_code == 200, response.content
        assert receiver.spans == 3
    assert file_requests(tmp_path / "o.jsonl") == [expected]


def _nested_json(depth: int) -> bytes:
    value = '{"stringValue": "bottom"}'
    for _ in range(depth):
        value = '{"arrayValue": {"values": [' + value + "]}}"
    span = (
        '{"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "deep",'
        ' "attributes": [{"key": "k", "value": ' + value + "}]}"
    )
    return ('{"resourceSpans": [{"scopeSpans": [{"spans": [' + span + "]}]}]}").encode()


def _big_value_body() -> bytes:
    request = encode_spans(make_spans())
    attribute = request.resource_spans[0].scope_spans[0].spans[0].attributes.add()
    attribute.key, attribute.value.string_value = "blob", "x" * (1024 * 1024 + 1)
    return codec.to_otlp_json(request)


def _nested_protobuf(depth: int) -> bytes:
    request = encode_spans(make_spans())
    value = request.resource_spans[0].scope_spans[0].spans[0].attributes.add()
    value.key = "deep"
    inner: AnyValue = value.value
    for _ in range(depth):
        inner = inner.array_value.values.add()
    inner.string_value = "bottom"
    return request.SerializeToString()


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        (b"[" * 10_000 + b"]" * 10_000, JS, "nested too deeply"),
        (b'{"resourceSpans": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", JS, "nested too deeply"),
        (_nested_json(5_000), JS, "nested too deeply"),
        (_nested_json(17), JS, "nested deeper than 16 levels"),
        (_nested_protobuf(17), PB, "nested deeper than 16 levels"),
        (
            json.dumps(
                {
                    "resourceSpans": [
                        {
                            "resource": {
                                "attributes": [
                                    {"key": f"k{i}", "value": {"stringValue": "v"}} for i in range(5000)
                                ]
                            }
                        }
                    ]
                }
            ).encode(),
            JS,
            "5000 attributes on one item, more than the limit of 4096",
        ),
        (
            _big_value_body(),
            JS,
            "an attribute value of 1048577 bytes, more than the limit of 1048576",
        ),
    ],
    ids=[
        "json-arrays",
        "json-in-otlp",
        "deep-values-5000",
        "deep-values-17",
        "protobuf-17",
        "attributes",
        "big",
    ],
)
def test_work_limits_answer_400_with_a_message(
    tmp_path: Path, body: bytes, headers: dict[str, str], message: str
) -> None:
    with Receiver("127.0.0.1:0", tmp_path / "o.jsonl") as receiver:
        response = requests.post(receiver.traces_url, data=body, headers=headers, timeout=30)
        assert response.status_code == 400, response.content[:200]
        status = _status(response)
        assert status.code == 3  # INVALID_ARGUMENT: not retried
        assert message in status.message
        _exporter_works(receiver)
    assert len(file_requests(tmp_path / "o.jsonl")) == 1  # only the exporter's


def test_concurrent_requests_share_the_budget_and_all_land(tmp_path: Path) -> None:
    spans = make_spans()
    with Receiver("127.0.0.1:0", tmp_path / "o.jsonl", limits=Limits(workers=2)) as receiver:
        failures: list[object] = []

        def send() -> None:
            exporter = OTLPSpanExporter(endpoint=receiver.traces_url, timeout=30)
            for _ in range(10):
                result = exporter.export(spans)
                if result != SpanExportResult.SUCCESS:
                    failures.append(result)
            exporter.shutdown()

        threads = [threading.Thread(target=send) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        assert receiver.budget.used == 0
    assert len(file_requests(tmp_path / "o.jsonl")) == 80


def test_pipelined_and_chunked_requests_are_all_served(tmp_path: Path) -> None:
    expected = encode_spans(make_spans())
    body = expected.SerializeToString()
    with Receiver("127.0.0.1:0", tmp_path / "o.jsonl") as receiver:
        with _connect(receiver) as sock:
            sock.sendall((_headers(len(body)) + body) * 3)  # three requests in one write
            assert receiver.wait_for(lambda r: r.spans == 9, timeout=10)
        chunks = iter([body[:100], body[100:]])  # requests sends an iterator chunked
        response = requests.post(receiver.traces_url, data=chunks, headers=PB, timeout=10)
        assert response.status_code == 200
    assert file_requests(tmp_path / "o.jsonl") == [expected] * 4


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400),
        (b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000, 431),
        (b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n\r\n", 411),
    ],
    ids=["bad-content-length", "endless-header", "no-length"],
)
def test_malformed_requests_get_an_answer_and_a_closed_connection(
    tmp_path: Path, request_bytes: bytes, status: int
) -> None:
    with Receiver("127.0.0.1:0", tmp_path / "o.jsonl") as receiver:
        with _connect(receiver) as sock:
            sock.sendall(request_bytes)
            answer = _read_answer(sock)
        assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:100]
        assert b"Connection: close" in answer
        _exporter_works(receiver)

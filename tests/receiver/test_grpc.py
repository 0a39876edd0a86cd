"""OTLP/gRPC into the same file as OTLP/HTTP, with the real gRPC exporter and grpcio clients."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from tests.receiver.test_receiver import file_requests, make_spans
from tracekit.receiver import Limits, Receiver

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@pytest.mark.parametrize(
    "compression", [grpc.Compression.NoCompression, grpc.Compression.Gzip], ids=["plain", "gzip"]
)
def test_grpc_exporter_spans_land_bit_exact_beside_http_ones(
    tmp_path: Path, compression: grpc.Compression
) -> None:
    over_grpc, over_http = make_spans(), make_spans()
    out = tmp_path / "out.jsonl"
    with Receiver("127.0.0.1:0", out, grpc_listen="127.0.0.1:0", track_traces=True) as receiver:
        exporter = GrpcSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True, compression=compression)
        assert exporter.export(over_grpc) == SpanExportResult.SUCCESS
        exporter.shutdown()
        assert HttpSpanExporter(endpoint=receiver.traces_url).export(over_http) == SpanExportResult.SUCCESS
        assert receiver.spans == 6 and receiver.requests == 2
    written = file_requests(out)
    assert written == [encode_spans(over_grpc), encode_spans(over_http)]
    assert written[0].SerializeToString(deterministic=True) == encode_spans(over_grpc).SerializeToString(
        deterministic=True
    )


def _call(receiver: Receiver, body: bytes, **kwargs: object) -> grpc.RpcError:
    with grpc.insecure_channel(receiver.grpc_endpoint) as channel:
        export = channel.unary_unary(EXPORT)
        with pytest.raises(grpc.RpcError) as caught:
            export(body, timeout=10, **kwargs)
    return caught.value


def test_grpc_refusals_use_the_otlp_status_codes(tmp_path: Path) -> None:
    limits = Limits(max_body_bytes=64 * 1024, memory_budget_bytes=1024 * 1024)
    with Receiver("127.0.0.1:0", tmp_path / "o.jsonl", grpc_listen="127.0.0.1:0", limits=limits) as receiver:
        bad = _call(receiver, b"\xff\xff\xff\xff garbage")
        assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not an ExportTraceServiceRequest" in (bad.details() or "")
        big = _call(receiver, b"\0" * (100 * 1024))
        assert big.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # grpc's own message size limit
        # Decoding a 60 KiB request is charged 20 times its size: more than this budget holds at all.
        request = encode_spans(make_spans())
        attribute = request.resource_spans[0].scope_spans[0].spans[0].attributes.add()
        attribute.key, attribute.value.string_value = "blob", "x" * (60 * 1024)
        costly = _call(receiver, request.SerializeToString())
        assert costly.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "memory budget" in (costly.details() or "")
        assert receiver.refused == 2  # grpc core refused the oversized one before it reached us
        exporter = GrpcSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True)
        assert exporter.export(make_spans()) == SpanExportResult.SUCCESS
        exporter.shutdown()


def test_grpc_requests_are_forwarded_too(tmp_path: Path) -> None:
    spans = make_spans()
    with Receiver("127.0.0.1:0", tmp_path / "downstream.jsonl") as downstream:
        with Receiver(
            "127.0.0.1:0", tmp_path / "local.jsonl", grpc_listen="127.0.0.1:0", forward=downstream.endpoint
        ) as front:
            exporter = GrpcSpanExporter(endpoint=front.grpc_endpoint, insecure=True)
            assert exporter.export(spans) == SpanExportResult.SUCCESS
            exporter.shutdown()
        assert front.forwarder is not None and front.forwarder.sent == 1
    assert file_requests(tmp_path / "downstream.jsonl") == file_requests(tmp_path / "local.jsonl")
    assert file_requests(tmp_path / "local.jsonl") == [encode_spans(spans)]

"""Receiver ingest over loopback, with the real OTLP exporter as the client.

The receiver is the real ``tracekit collect`` in its own process (so the client's encoding does not
share its interpreter). protobuf: the SDK's ``OTLPSpanExporter`` (http/protobuf), plain and gzip. JSON:
the same spans in OTLP/JSON posted with ``requests`` (the Python SDK has no JSON exporter). Batches of
512 spans, the BatchSpanProcessor's default export size. Also printed: the receiver's own CPU cost per
batch measured in process (decode + OTLP JSON line, no HTTP) and the exporter's encoding cost, which
bound what one client and one receiver can do, next to the generic ``json_format`` conversions the
receiver's fast paths replace (and are tested against).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec
import requests
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tracekit.receiver import codec

BATCH = 512
ROUNDS = 30


def make_batch(n: int = BATCH) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    resource = Resource.create(
        {
            "service.name": "shop",
            "k8s.pod.name": "shop-abc-1",
            "k8s.namespace.name": "shop",
            "k8s.container.name": "app",
        }
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bench")
    for i in range(n):
        with tracer.start_as_current_span("GET /products/<id>", kind=SpanKind.SERVER) as span:
            span.set_attributes(
                {
                    "http.request.method": "GET",
                    "url.path": f"/products/{i % 20}",
                    "http.response.status_code": 200,
                    "server.address": "shop.example.com",
                    "user_agent.original": "bench/1.0",
                }
            )
    provider.shutdown()
    return list(memory.get_finished_spans())


def _rate(spans: int, seconds: float) -> str:
    return f"{spans / seconds:>10,.0f} spans/s"


def bench_protobuf(url: str, batch: list[ReadableSpan], compression: Compression) -> float:
    exporter = OTLPSpanExporter(endpoint=url, compression=compression)
    exporter.export(batch)  # warm the connection
    started = time.perf_counter()
    for _ in range(ROUNDS):
        assert exporter.export(batch) == SpanExportResult.SUCCESS
    took = time.perf_counter() - started
    exporter.shutdown()
    return took


def bench_json(url: str, batch: list[ReadableSpan]) -> float:
    body = codec.to_otlp_json(encode_spans(batch))
    session = requests.Session()
    headers = {"Content-Type": "application/json"}
    session.post(url, data=body, headers=headers, timeout=30)
    started = time.perf_counter()
    for _ in range(ROUNDS):
        assert session.post(url, data=body, headers=headers, timeout=30).status_code == 200
    took = time.perf_counter() - started
    session.close()
    return took


def _per_batch(work: object, rounds: int = ROUNDS) -> float:
    assert callable(work)
    work()  # warm up
    started = time.perf_counter()
    for _ in range(rounds):
        work()
    return (time.perf_counter() - started) / rounds


def _cpu(seconds: float) -> str:
    return f"{_rate(BATCH, seconds)}  ({seconds * 1000:5.1f} ms, {seconds / BATCH * 1e6:5.1f} µs/span)"


def main() -> None:
    batch = make_batch()
    total = BATCH * ROUNDS
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.jsonl"
        proc = subprocess.Popen(
            [sys.executable, "-m", "tracekit", "collect", "--listen", "127.0.0.1:0", "--out", str(out)],
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stderr is not None
            url = proc.stderr.readline().split("listening on ", 1)[1].split(",", 1)[0]
            pb = bench_protobuf(url, batch, Compression.NoCompression)
            pb_gzip = bench_protobuf(url, batch, Compression.Gzip)
            js = bench_json(url, batch)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        size = out.stat().st_size
    request = encode_spans(batch)
    pb_body, js_body = request.SerializeToString(), codec.to_otlp_json(request)
    encode = _per_batch(lambda: encode_spans(batch).SerializeToString())
    pb_cpu = _per_batch(lambda: codec.ingest(pb_body, codec.PROTOBUF).otlp_json())
    js_cpu = _per_batch(lambda: codec.ingest(js_body, codec.JSON).otlp_json())
    # The generic paths the fast ones replace: json_format.MessageToDict, and json_format.ParseDict.
    pb_ref = _per_batch(
        lambda: msgspec.json.encode(codec.to_otlp_dict_reference(codec.decode(pb_body, codec.PROTOBUF)))
    )
    js_ref = _per_batch(lambda: codec.to_otlp_json(codec.decode(js_body, codec.JSON)), rounds=5)
    print(f"receiver ingest (tracekit collect), {ROUNDS} exports of {BATCH} spans over loopback:")
    print(f"  protobuf (OTLPSpanExporter)        {_rate(total, pb)}  ({pb / ROUNDS * 1000:.1f} ms/export)")
    gz_ms = pb_gzip / ROUNDS * 1000
    print(f"  protobuf + gzip (OTLPSpanExporter) {_rate(total, pb_gzip)}  ({gz_ms:.1f} ms/export)")
    print(f"  OTLP/JSON (requests)               {_rate(total, js)}  ({js / ROUNDS * 1000:.1f} ms/export)")
    print("CPU per batch, in process:")
    print(f"  exporter encode (client side)      {_cpu(encode)}")
    print(f"  receiver, protobuf -> JSON line    {_cpu(pb_cpu)}")
    print(f"  receiver, OTLP/JSON -> JSON line   {_cpu(js_cpu)}")
    print(f"  json_format, protobuf -> JSON line {_cpu(pb_ref)}  (reference: MessageToDict)")
    print(f"  json_format, OTLP/JSON -> JSON line{_cpu(js_ref)}  (reference: ParseDict)")
    print("ratios:")
    print(f"  JSON / protobuf ingest time        {js / pb:.2f}")
    print(f"  gzip / plain protobuf ingest time  {pb_gzip / pb:.2f}")
    print(f"  receiver CPU share of an export    {pb_cpu / (pb / ROUNDS):.2f}")
    print(f"  json_format / receiver, protobuf   {pb_ref / pb_cpu:.1f}")
    print(f"  json_format / receiver, OTLP/JSON  {js_ref / js_cpu:.1f}")
    print(f"  file written: {size / 1e6:.1f} MB for {3 * (ROUNDS + 1) * BATCH:,} spans")

"""Receiver ingest over loopback, with the real OpenTelemetry exporters as clients.

End to end: ``tracekit collect`` in its own process, and 1 or 4 client processes exporting batches of
512 spans (the BatchSpanProcessor's default export size) at once, for each protocol: OTLP/HTTP
protobuf (the SDK's HTTP ``OTLPSpanExporter``), OTLP/gRPC (the SDK's gRPC ``OTLPSpanExporter``) and
OTLP/HTTP JSON (the same spans pre-encoded as OTLP/JSON, posted with ``requests``: the Python SDK has
no JSON exporter). Printed: spans/s from the first client's start to the last one's end, the
receiver's own CPU per span (from /proc: what the load of other processes moves least) and the
clients' (the exporters' encoding, on the same cores), the receiver's peak
resident size, whether every span sent is in the file, and the load average (this machine's 2 cores
are shared: clients and receiver compete for them, and so do other users).

In process: the receiver's CPU per batch (decode + OTLP JSON line, no I/O) and the exporter's encoding
cost, next to the generic ``json_format`` conversions the receiver's fast paths replace.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
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


# -- end to end: concurrent client processes ---------------------------------------------------------

#: Exports per client process: the same total work for 1 and for 4 clients.
EXPORTS_TOTAL = 40
PROTOCOLS = ("http/protobuf", "grpc", "http/json")


def client(protocol: str, target: str, exports: int) -> None:
    """One exporter process: build a batch, wait for "go" on stdin, export it ``exports`` times, print
    ``start end failures cpu`` (wall clock, for the parent to take the span of all clients; CPU seconds)."""
    batch = make_batch()
    send: Callable[[], bool]
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        grpc_exporter = GrpcExporter(endpoint=target, insecure=True, timeout=60)
        send = lambda: grpc_exporter.export(batch) == SpanExportResult.SUCCESS  # noqa: E731
    elif protocol == "http/protobuf":
        http_exporter = OTLPSpanExporter(endpoint=target, timeout=60)
        send = lambda: http_exporter.export(batch) == SpanExportResult.SUCCESS  # noqa: E731
    else:
        body = codec.to_otlp_json(encode_spans(batch))
        session = requests.Session()
        headers = {"Content-Type": "application/json"}
        send = lambda: session.post(target, data=body, headers=headers, timeout=60).ok  # noqa: E731
    sys.stdin.readline()
    started, cpu = time.time(), time.process_time()
    failures = sum(not send() for _ in range(exports))
    print(started, time.time(), failures, time.process_time() - cpu, flush=True)


def _proc_stat(pid: int) -> tuple[float, int]:
    """(CPU seconds used, peak resident bytes) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    peak = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) * 1024
    return cpu, peak


def end_to_end(protocol: str, clients: int, tmp: Path) -> str:
    out = tmp / f"{protocol.replace('/', '-')}-{clients}.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracekit", "collect", "--listen", "127.0.0.1:0",
         "--grpc-listen", "127.0.0.1:0", "--out", str(out)],
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        url = line.split("listening on ", 1)[1].split(",", 1)[0]
        grpc_target = line.split("OTLP/gRPC on ", 1)[1].split(",", 1)[0]
        target = grpc_target if protocol == "grpc" else url
        exports = EXPORTS_TOTAL // clients
        code = f"import bench.bench_receiver as b; b.client({protocol!r}, {target!r}, {exports})"
        kids = [
            subprocess.Popen(
                [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
            for _ in range(clients)
        ]
        time.sleep(0.1)  # nothing measured yet: the clients build their batches meanwhile
        cpu_before, _ = _proc_stat(proc.pid)
        for kid in kids:
            assert kid.stdin is not None
            kid.stdin.write("go\n")
            kid.stdin.flush()
        results = [kid.communicate(timeout=600)[0].split() for kid in kids]
        cpu_after, peak = _proc_stat(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    starts, ends, failures, client_cpu = zip(
        *((float(a), float(b), int(c), float(d)) for a, b, c, d in results), strict=True
    )
    sent = clients * exports * BATCH
    stored = sum(codec.count_spans(codec.from_otlp_json(line)) for line in out.read_bytes().splitlines())
    wall = max(ends) - min(starts)
    cpu_us = (cpu_after - cpu_before) / sent * 1e6
    client_us = sum(client_cpu) / sent * 1e6
    lost = "nothing lost" if stored == sent and sum(failures) == 0 else f"LOST: {sent - stored} spans"
    return (
        f"  {protocol:<14} {clients} client(s)  {sent / wall:>9,.0f} spans/s"
        f"   CPU/span: receiver {cpu_us:5.1f} µs, clients {client_us:5.1f} µs"
        f"   receiver peak RSS {peak / 2**20:4.0f} MiB   {lost}"
    )


def main() -> None:
    batch = make_batch()
    total = BATCH * ROUNDS
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    print(f"end to end, {EXPORTS_TOTAL} exports of {BATCH} spans in all, over loopback:")
    with tempfile.TemporaryDirectory() as tmp:
        for protocol in PROTOCOLS:
            for clients in (1, 4):
                print(end_to_end(protocol, clients, Path(tmp)), flush=True)
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.jsonl"
        proc = subprocess.Popen(
            [sys.executable, "-m", "tracekit", "collect", "--listen", "127.0.0.1:0", "--grpc-listen", "none",
             "--out", str(out)],
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
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
    print(f"one client, {ROUNDS} exports of {BATCH} spans over loopback:")
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

"""``tracekit collect`` as a real process under hostile conditions: a descriptor limit, a full disk,
decompression bombs, signals. Ground truth is what the test sent and was acknowledged."""

from __future__ import annotations

import contextlib
import gzip
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from tests.receiver.test_receiver import PB, make_spans
from tracekit.receiver import codec

pytestmark = pytest.mark.slow


class Collect:
    """A running ``tracekit collect``; :meth:`stop` sends SIGTERM and returns (exit code, stderr)."""

    def __init__(self, out: Path, *args: str, descriptors: int | None = None) -> None:
        def limit() -> None:
            if descriptors is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (descriptors, descriptors))

        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tracekit",
                "collect",
                "--listen",
                "127.0.0.1:0",
                "--out",
                str(out),
                *args,
            ],
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=limit,
        )
        assert self.proc.stderr is not None
        self.first_lines = []
        while True:
            line = self.proc.stderr.readline()
            assert line, "tracekit collect exited before listening"
            self.first_lines.append(line)
            if "listening on " in line:
                break
        self.url = line.split("listening on ", 1)[1].split(",", 1)[0]
        self.endpoint = self.url.removesuffix("/v1/traces")
        host, port = self.endpoint.removeprefix("http://").rsplit(":", 1)
        self.address = (host, int(port))

    def status(self, field: str) -> int:
        """A ``/proc/PID/status`` figure in bytes (VmRSS, VmHWM) or as a count."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                value = line.split()[1]
                return int(value) * 1024 if line.endswith("kB") else int(value)
        raise KeyError(field)

    def descriptors(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, "".join(self.first_lines) + err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@contextlib.contextmanager
def collect(out: Path, *args: str, descriptors: int | None = None) -> Iterator[Collect]:
    running = Collect(out, *args, descriptors=descriptors)
    try:
        yield running
    finally:
        running.kill()


def test_idle_connections_past_the_descriptor_limit_leave_room_for_an_exporter(tmp_path: Path) -> None:
    """1,100 connections that never send a byte, against a process limited to 1,024 descriptors."""
    out = tmp_path / "out.jsonl"
    spans = make_spans()
    idle: list[socket.socket] = []
    with collect(out, descriptors=1024) as running:
        try:
            for _ in range(1100):
                idle.append(socket.create_connection(running.address, timeout=30))
            # The server closes the longest idle ones to stay under its cap: it never runs out.
            exporter = OTLPSpanExporter(endpoint=running.url, timeout=5)
            assert exporter.export(spans) == SpanExportResult.SUCCESS
            exporter.shutdown()
            assert running.descriptors() < 1024
            # And it still serves a second client while the idle ones are held open.
            assert requests.post(
                running.url, data=encode_spans(spans).SerializeToString(), headers=PB, timeout=5
            ).ok
        finally:
            for sock in idle:
                sock.close()
        code, err = running.stop()
    assert code == 0, err
    assert "6 spans in 2 requests" in err
    assert [codec.from_otlp_json(line) for line in out.read_bytes().splitlines()] == [encode_spans(spans)] * 2


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _request(trace_number: int) -> tuple[bytes, set[str]]:
    """An exporter-shaped request of 3 spans with its own trace id, and its span ids."""
    request = encode_spans(make_spans())
    trace_id = uuid.UUID(int=trace_number + 1).bytes
    for span in request.resource_spans[0].scope_spans[0].spans:
        span.trace_id = trace_id
    for span in request.resource_spans[0].scope_spans[0].spans:
        for link in span.links:
            link.trace_id = trace_id
    spans = {
        f"{trace_id.hex()}/{span.span_id.hex()}" for span in request.resource_spans[0].scope_spans[0].spans
    }
    return request.SerializeToString(), spans


def test_a_full_disk_loses_no_acknowledged_span_and_leaves_whole_lines(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk", "1m") as disk:
        out = disk / "out.jsonl"
        filler = disk / "filler"
        filler.write_bytes(b"\0" * (700 * 1024))
        acknowledged: set[str] = set()
        statuses: list[int] = []
        with collect(out, "--grpc-listen", "none") as running:
            session = requests.Session()
            number = 0

            def send() -> int:
                nonlocal number
                body, spans = _request(number)
                number += 1
                response = session.post(running.url, data=body, headers=PB, timeout=30)
                statuses.append(response.status_code)
                if response.status_code == 200:
                    acknowledged.update(spans)
                else:
                    assert response.status_code == 503, response.content
                    assert response.headers["Retry-After"]
                return response.status_code

            while send() == 200:
                assert number < 10_000, "the disk never filled"
            for _ in range(5):
                assert send() == 503  # still full: refused, and nothing of them kept
            filler.unlink()
            for _ in range(20):
                assert send() == 200
            code, err = running.stop()
        assert code == 0, err
        assert "Traceback" not in err
        assert "write errors" in err.splitlines()[-1]
        lines = out.read_bytes().splitlines(keepends=True)
        assert all(line.endswith(b"\n") for line in lines)
        stored: set[str] = set()
        for line in lines:
            request = codec.from_otlp_json(line)  # every line parses
            for span in request.resource_spans[0].scope_spans[0].spans:
                stored.add(f"{span.trace_id.hex()}/{span.span_id.hex()}")
        assert stored == acknowledged
        assert statuses.count(503) >= 6


def _fill(path: Path) -> None:
    """Write zeros to ``path`` until its file system is full."""
    with path.open("wb", buffering=0) as filler, contextlib.suppress(OSError):
        while True:
            filler.write(b"\0" * 4096)


def test_sigterm_after_write_errors_exits_cleanly_with_a_summary(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk", "256k") as disk:
        out = disk / "out.jsonl"
        _fill(disk / "filler")
        with collect(out, "--grpc-listen", "none") as running:
            body, _ = _request(1)
            for _ in range(3):
                assert requests.post(running.url, data=body, headers=PB, timeout=30).status_code == 503
            code, err = running.stop()
    assert code == 0, err
    assert "Traceback" not in err
    assert err.splitlines()[-1].endswith("(3 refused, 3 write errors)")


def _bomb(size: int) -> bytes:
    """A gzip member of ``size`` zero bytes, compressed block by block (never held whole)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\0" * (1024 * 1024)
    parts = [compressor.compress(block) for _ in range(size // len(block))]
    return b"".join([*parts, compressor.flush()])


def test_concurrent_decompression_bombs_stay_within_the_memory_budget(tmp_path: Path) -> None:
    budget = 64 * 1024 * 1024
    bomb = _bomb(512 * 1024 * 1024)  # 512 MiB of zeros in about 500 KiB
    assert len(bomb) < 1024 * 1024
    json_bomb = gzip.compress(b'{"resourceSpans": [' + b'{"schemaUrl": "x"},' * 2_000_000 + b"{}]}")
    out = tmp_path / "out.jsonl"
    with collect(
        out,
        "--memory-budget",
        str(budget),
        "--max-decompressed",
        str(48 * 1024 * 1024),
        "--grpc-listen",
        "none",
    ) as running:
        exporter = OTLPSpanExporter(endpoint=running.url, timeout=10)
        assert exporter.export(make_spans()) == SpanExportResult.SUCCESS
        before = running.status("VmRSS")
        statuses: list[int] = []
        lock = threading.Lock()

        def attack(body: bytes, media: str) -> None:
            for _ in range(3):
                response = requests.post(
                    running.url,
                    data=body,
                    headers={"Content-Type": media, "Content-Encoding": "gzip"},
                    timeout=60,
                )
                with lock:
                    statuses.append(response.status_code)

        threads = [threading.Thread(target=attack, args=(bomb, codec.PROTOBUF)) for _ in range(6)]
        threads += [threading.Thread(target=attack, args=(json_bomb, codec.JSON)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        peak = running.status("VmHWM")
        assert exporter.export(make_spans()) == SpanExportResult.SUCCESS
        exporter.shutdown()
        code, err = running.stop()
    assert code == 0, err
    assert set(statuses) <= {413, 503}  # too big at all, or not now (then the client retries)
    # Decompressed bytes and decoding estimates stay under the budget; allow for allocator slack.
    print(f"peak growth {(peak - before) / 2**20:.1f} MiB")
    assert peak - before < budget + 24 * 1024 * 1024, (peak - before) / 2**20


def test_binding_beyond_loopback_warns_in_one_line(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "tracekit", "collect",
            "--listen", "0.0.0.0:0", "--grpc-listen", "none", "--out", str(tmp_path / "o.jsonl"),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        lines = [proc.stderr.readline(), proc.stderr.readline()]
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "listening on http://0.0.0.0:" in lines[1]
    assert lines[0] == (
        "tracekit collect: warning: --listen 0.0.0.0:0 accepts connections from other machines"
        " (no TLS, no authentication)\n"
    )
    assert proc.returncode == 0 and "0 spans in 0 requests" in rest


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--listen", "nowhere:http"], "Error: --listen: expected HOST:PORT, got 'nowhere:http'"),
        (
            ["--grpc-listen", "127.0.0.1:99999"],
            "Error: --grpc-listen: port out of range in '127.0.0.1:99999'",
        ),
        (
            ["--out", "/nonexistent/dir/x.jsonl"],
            "Error: --out /nonexistent/dir/x.jsonl: cannot open: No such file",
        ),
        (["--forward", "ftp://jaeger"], "Error: --forward: not an http(s) URL: 'ftp://jaeger'"),
        (["--memory-budget", "10"], "Error: Invalid value for '--memory-budget'"),
    ],
    ids=["listen", "grpc-listen", "out", "forward", "memory-budget"],
)
def test_each_option_has_its_own_error(args: list[str], message: str) -> None:
    base = ["--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0"]
    done = subprocess.run(
        [sys.executable, "-m", "tracekit", "collect", *base, *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_a_port_in_use_names_the_option(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        for option in ("--listen", "--grpc-listen"):
            other = "--grpc-listen" if option == "--listen" else "--listen"
            done = subprocess.run(
                [sys.executable, "-m", "tracekit", "collect", option, f"127.0.0.1:{port}",
                 other, "127.0.0.1:0", "--out", str(tmp_path / "o.jsonl")],
                capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            assert done.returncode == 2
            assert done.stderr == f"Error: {option} 127.0.0.1:{port}: cannot bind: Address already in use\n"


def test_silent_grpc_connections_past_the_descriptor_limit_are_shed_by_the_handshake_timeout(
    tmp_path: Path,
) -> None:
    """gRPC's connection cap is grpc core's: at the cap it turns newcomers away, and connections that
    never start HTTP/2 are closed at the handshake timeout, after which an exporter gets through."""
    out = tmp_path / "out.jsonl"
    spans = make_spans()
    idle: list[socket.socket] = []
    with collect(out, "--grpc-listen", "127.0.0.1:0", "--header-timeout", "1", descriptors=1024) as running:
        target = "".join(running.first_lines).split("OTLP/gRPC on ", 1)[1].split(",", 1)[0]
        host, port = target.rsplit(":", 1)
        try:
            for _ in range(1100):
                idle.append(socket.create_connection((host, int(port)), timeout=30))
            assert running.descriptors() < 1024
            exporter = GrpcSpanExporter(endpoint=target, insecure=True, timeout=30)  # retries meanwhile
            assert exporter.export(spans) == SpanExportResult.SUCCESS
            exporter.shutdown()
        finally:
            for sock in idle:
                sock.close()
        code, err = running.stop()
    assert code == 0, err
    assert [codec.from_otlp_json(line) for line in out.read_bytes().splitlines()] == [encode_spans(spans)]

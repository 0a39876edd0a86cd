"""The embedded OTLP/HTTP trace receiver: ``POST /v1/traces`` to OTLP JSON lines on disk.

It plays the part of an OpenTelemetry Collector with an ``otlp`` receiver and a ``file`` exporter, so
``tracekit analyze`` reads its output and a Collector's alike, and it is small enough to start inside
``tracekit demo`` or a test. Bad input never takes it down: every refusal is a 4xx with an OTLP error
body (``google.rpc.Status``), and the next request is served as usual.

Usage::

    with Receiver("127.0.0.1:0", "traces.jsonl") as receiver:
        ...  # point OTEL_EXPORTER_OTLP_ENDPOINT at receiver.endpoint
        receiver.wait_for(lambda r: r.spans >= 10, timeout=10)
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO

from tracekit.receiver import codec
from tracekit.receiver.forward import Forwarder

log = logging.getLogger(__name__)

TRACES_PATH = "/v1/traces"


@dataclass(frozen=True)
class Limits:
    """Size limits. The body limit matches the Collector's default ``max_request_body_size`` (20 MiB)."""

    max_body_bytes: int = 20 * 1024 * 1024
    #: Cap on a gzip body once decompressed: a gzip bomb is refused after at most this many bytes.
    max_decompressed_bytes: int = 64 * 1024 * 1024


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[V6]:PORT``, ``:PORT`` (loopback) or ``PORT`` -> (host, port)."""
    text = listen.strip()
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or "127.0.0.1"
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"--listen: expected HOST:PORT, got {listen!r}") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"--listen: port out of range in {listen!r}")
    return host, number


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The OTLP exporter reconnects often; a deep backlog keeps bursts from being refused.
    request_queue_size = 128
    receiver: Receiver


class _V6Server(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the exporter's requests.Session expects
    disable_nagle_algorithm = True  # headers and body are separate writes: no delayed-ACK stalls
    server: _Server
    server_version = "tracekit-otlp"

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _answer(self, status: int, body: bytes, media: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _refuse(self, status: int, message: str, media: str = codec.JSON) -> None:
        self.server.receiver._note_refused(status, message)
        self._answer(status, codec.status_body(status, message, media), media)

    def do_GET(self) -> None:
        self.close_connection = self._drain_or_close()
        self._refuse(405, "only POST /v1/traces is served")

    do_PUT = do_DELETE = do_PATCH = do_GET

    def _drain_or_close(self) -> bool:
        """Read a small unread body so keep-alive stays in sync; otherwise ask to close the connection."""
        length = self.headers.get("Content-Length")
        if length is None:
            return self.headers.get("Transfer-Encoding") is not None
        try:
            size = int(length)
        except ValueError:
            return True
        if 0 <= size <= 64 * 1024:
            self.rfile.read(size)
            return self.close_connection
        return True

    def do_POST(self) -> None:
        receiver = self.server.receiver
        path = self.path.split("?", 1)[0]
        media = codec.media_type(self.headers.get("Content-Type"))
        if path != TRACES_PATH:
            self.close_connection = self._drain_or_close()
            return self._refuse(
                404, f"no such path {path!r}: traces go to {TRACES_PATH}", media or codec.JSON
            )
        if media is None:
            self.close_connection = self._drain_or_close()
            return self._refuse(
                415,
                f"unsupported Content-Type {self.headers.get('Content-Type')!r}: "
                f"use {codec.PROTOBUF} or {codec.JSON}",
            )
        encoding = (self.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding not in ("identity", "gzip"):
            self.close_connection = self._drain_or_close()
            return self._refuse(415, f"unsupported Content-Encoding {encoding!r}: use gzip or none", media)
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            self.close_connection = True
            return self._refuse(411, "Content-Length is required", media)
        try:
            length = int(length_header)
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            return self._refuse(400, f"invalid Content-Length {length_header!r}", media)
        limits = receiver.limits
        if length > limits.max_body_bytes:
            # Not reading a huge body: answer at once and drop the connection.
            self.close_connection = True
            return self._refuse(
                413, f"body of {length} bytes exceeds the {limits.max_body_bytes}-byte limit", media
            )
        body = self.rfile.read(length)
        if len(body) != length:
            self.close_connection = True
            return self._refuse(400, "body shorter than Content-Length", media)
        try:
            if encoding == "gzip":
                body = codec.gunzip(body, limits.max_decompressed_bytes)
            batch = codec.ingest(body, media)
        except codec.PayloadError as exc:
            return self._refuse(exc.status, str(exc), media)
        try:
            receiver._accept(batch)
        except OSError as exc:  # disk full, closed file: the sender should retry
            log.error("cannot write spans: %s", exc)
            return self._refuse(503, f"cannot store spans: {exc}", media)
        self._answer(200, codec.success_body(media), media)


class Receiver:
    """An OTLP/HTTP trace receiver writing OTLP JSON lines.

    :param listen: ``HOST:PORT``; port 0 picks a free port (see :attr:`endpoint`).
    :param out: a path (created or truncated), ``"-"`` for stdout, a binary file object, or None to
        keep nothing (counting only, e.g. for benchmarks).
    :param forward: an OTLP/HTTP base URL to send every accepted request on to, asynchronously.
    :param track_traces: remember the trace ids seen (see :attr:`trace_ids`), for callers that wait
        until given traces have arrived.
    """

    def __init__(
        self,
        listen: str = "127.0.0.1:4318",
        out: str | Path | IO[bytes] | None = None,
        *,
        forward: str | None = None,
        limits: Limits | None = None,
        track_traces: bool = False,
    ) -> None:
        self.listen = parse_listen(listen)
        self.limits = limits or Limits()
        self._out_spec = out
        self._out: IO[bytes] | None = None
        self._owns_out = False
        self._forward_url = forward
        self._forwarder: Forwarder | None = None
        self._track = track_traces
        self._cond = threading.Condition()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        #: Counters, updated under the condition's lock.
        self.spans = 0
        self.requests = 0
        self.refused = 0
        self.trace_ids: set[str] = set()
        self.last_refusal = ""

    # -- life cycle --------------------------------------------------------------------------
    def start(self) -> Receiver:
        """Bind, open the output and serve from a background thread. Returns self."""
        host, port = self.listen
        cls = _V6Server if ":" in host else _Server
        server = cls((host, port), _Handler)
        server.receiver = self
        out = self._out_spec
        if out is None:
            self._out = None
        elif out == "-":
            self._out = sys.stdout.buffer
        elif isinstance(out, (str, Path)):
            self._out = open(out, "wb")  # noqa: SIM115 (closed in stop())
            self._owns_out = True
        else:
            self._out = out
        if self._forward_url:
            self._forwarder = Forwarder(self._forward_url)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="otlp-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, finish forwarding, flush and close the output. Safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._forwarder is not None:
            self._forwarder.close(timeout)
        with self._cond:
            out, self._out = self._out, None
            if out is not None:
                try:
                    out.flush()
                finally:
                    if self._owns_out:
                        out.close()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError("receiver is not running")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def endpoint(self) -> str:
        """Base URL for ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the SDK appends ``/v1/traces``)."""
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def traces_url(self) -> str:
        return self.endpoint + TRACES_PATH

    @property
    def forwarder(self) -> Forwarder | None:
        return self._forwarder

    # -- waiting -----------------------------------------------------------------------------
    def wait_for(self, predicate: Callable[[Receiver], bool], timeout: float) -> bool:
        """Block until ``predicate(self)`` holds (checked after every accepted request) or timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout)

    # -- called by the handler -----------------------------------------------------------------
    def _accept(self, batch: codec.Batch) -> None:
        n = batch.spans
        line = batch.otlp_json() + b"\n" if self._out_spec is not None else b""
        ids = batch.trace_ids() if self._track else ()
        with self._cond:
            if self._out is not None:
                self._out.write(line)
                self._out.flush()
            elif self._out_spec is not None:
                raise OSError("output is closed")
            self.spans += n
            self.requests += 1
            self.trace_ids.update(ids)
            self._cond.notify_all()
        if self._forwarder is not None:
            # A JSON request has no protobuf message yet: the forwarding thread builds it.
            self._forwarder.submit(batch.protobuf)

    def _note_refused(self, status: int, message: str) -> None:
        log.info("refused a request (%s): %s", status, message)
        with self._cond:
            self.refused += 1
            self.last_refusal = f"{status} {message}"
            self._cond.notify_all()


__all__ = ["Limits", "Receiver", "parse_listen"]

"""The embedded OTLP trace receiver: OTLP/HTTP ``POST /v1/traces`` and OTLP/gRPC to OTLP JSON lines.

It plays the part of an OpenTelemetry Collector with an ``otlp`` receiver and a ``file`` exporter, so
``tracekit analyze`` reads its output and a Collector's alike, and it is small enough to start inside
``tracekit demo`` or a test. Bad input never takes it down: every refusal is a 4xx with an OTLP error
body (``google.rpc.Status``) or a gRPC status, and the next request is served as usual. Everything a
client can make it spend is bounded (:class:`~tracekit.receiver.limits.Limits`), and every span it
acknowledged is in the file, on a line of its own (:class:`~tracekit.receiver.store.Store`).

Usage::

    with Receiver("127.0.0.1:0", "traces.jsonl", grpc_listen="127.0.0.1:0") as receiver:
        ...  # point OTEL_EXPORTER_OTLP_ENDPOINT at receiver.endpoint (or receiver.grpc_endpoint)
        receiver.wait_for(lambda r: r.spans >= 10, timeout=10)
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

from tracekit.receiver.forward import Forwarder
from tracekit.receiver.limits import Budget, Limits
from tracekit.receiver.otlp_grpc import GrpcServer
from tracekit.receiver.otlp_http import TRACES_PATH, HttpServer, bind
from tracekit.receiver.pipeline import Pipeline
from tracekit.receiver.store import Store

log = logging.getLogger(__name__)


def parse_listen(listen: str, option: str = "--listen") -> tuple[str, int]:
    """``HOST:PORT``, ``[V6]:PORT``, ``:PORT`` (loopback) or ``PORT`` -> (host, port)."""
    text = listen.strip()
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or "127.0.0.1"
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"{option}: expected HOST:PORT, got {listen!r}") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"{option}: port out of range in {listen!r}")
    return host, number


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Receiver:
    """An OTLP trace receiver (HTTP, and gRPC when ``grpc_listen`` is given) writing OTLP JSON lines.

    :param listen: ``HOST:PORT`` for OTLP/HTTP; port 0 picks a free port (see :attr:`endpoint`).
    :param out: a path (created or truncated), ``"-"`` for stdout, a binary file object, or None to
        keep nothing (counting only, e.g. for benchmarks).
    :param grpc_listen: ``HOST:PORT`` for OTLP/gRPC, or None for none.
    :param forward: an OTLP/HTTP base URL to send every accepted request on to, asynchronously.
    :param track_traces: remember the trace ids seen (see :attr:`trace_ids`), for callers that wait
        until given traces have arrived.
    """

    def __init__(
        self,
        listen: str = "127.0.0.1:4318",
        out: str | Path | IO[bytes] | None = None,
        *,
        grpc_listen: str | None = None,
        forward: str | None = None,
        limits: Limits | None = None,
        track_traces: bool = False,
    ) -> None:
        self.listen = parse_listen(listen)
        self.grpc_listen = parse_listen(grpc_listen, "--grpc-listen") if grpc_listen else None
        self.limits = limits or Limits()
        self.budget = Budget(self.limits.memory_budget_bytes)
        self._out_spec = out
        self._store: Store | None = None
        self._forward_url = forward
        self._forwarder: Forwarder | None = None
        self._track = track_traces
        self._cond = threading.Condition()
        self._http: HttpServer | None = None
        self._grpc: GrpcServer | None = None
        #: Counters, updated under the condition's lock.
        self.spans = 0
        self.requests = 0
        self.refused = 0
        self.trace_ids: set[str] = set()
        self.last_refusal = ""
        #: Set by :meth:`stop` when closing the output went wrong (the file is still whole lines).
        self.stop_problem: str | None = None

    # -- life cycle --------------------------------------------------------------------------
    def start(self) -> Receiver:
        """Bind, open the output and serve from background threads. Returns self.

        :raises OSError: a listener cannot bind (``filename`` is ``"--listen"`` or ``"--grpc-listen"``)
            or the output cannot be opened (``filename`` is the path).
        """
        listeners = 2 if self.grpc_listen else 1
        cap = self.limits.connection_cap(listeners)
        host, port = self.listen
        try:
            sock = bind(host, port)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror or str(exc), "--listen") from None
        grpc_server = None
        try:
            out = self._out_spec
            store = Store(sys.stdout.buffer if out == "-" else out)
        except OSError:
            sock.close()
            raise
        pipeline = Pipeline(self.limits, self.budget, store, self, track_traces=self._track)
        if self.grpc_listen:
            try:
                grpc_server = GrpcServer(*self.grpc_listen, pipeline, self.limits, cap, self._note_refused)
            except (OSError, RuntimeError) as exc:
                sock.close()
                store.close()
                code = getattr(exc, "errno", None) or errno.EADDRNOTAVAIL
                raise OSError(code, os.strerror(code), "--grpc-listen") from None
        if self._forward_url:
            self._forwarder = Forwarder(self._forward_url)
            pipeline.forwarder = self._forwarder
        self._store = store
        self._http = HttpServer(sock, pipeline, self.limits, cap, self._note_refused)
        self._http.start()
        if grpc_server is not None:
            grpc_server.start()
            self._grpc = grpc_server
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving (requests in progress are finished and answered), finish forwarding, close the
        output. Never raises: a problem closing the output is in :attr:`stop_problem`. Safe to call twice."""
        http, self._http = self._http, None
        grpc_server, self._grpc = self._grpc, None
        if http is not None:
            http.stop(timeout * 2)
        if grpc_server is not None:
            grpc_server.stop(timeout)
        if self._forwarder is not None:
            self._forwarder.close(timeout)
        if self._store is not None and not self._store.closed:
            self.stop_problem = self._store.close()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        if self._http is None:
            raise RuntimeError("receiver is not running")
        return self._http.address

    @property
    def endpoint(self) -> str:
        """Base URL for ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the SDK appends ``/v1/traces``)."""
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def traces_url(self) -> str:
        return self.endpoint + TRACES_PATH

    @property
    def grpc_address(self) -> tuple[str, int]:
        if self._grpc is None:
            raise RuntimeError("the gRPC receiver is not running")
        return self._grpc.address

    @property
    def grpc_endpoint(self) -> str:
        """``host:port`` for an OTLP/gRPC exporter (``insecure=True``)."""
        host, port = self.grpc_address
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @property
    def forwarder(self) -> Forwarder | None:
        return self._forwarder

    @property
    def http_server(self) -> HttpServer | None:
        return self._http

    @property
    def write_errors(self) -> int:
        """Requests refused because the output could not take their line."""
        return self._store.errors if self._store is not None else 0

    # -- waiting -----------------------------------------------------------------------------
    def wait_for(self, predicate: Callable[[Receiver], bool], timeout: float) -> bool:
        """Block until ``predicate(self)`` holds (checked after every accepted request) or timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout)

    # -- called by the servers -----------------------------------------------------------------
    def _accepted(self, spans: int, trace_ids: set[str]) -> None:
        with self._cond:
            self.spans += spans
            self.requests += 1
            if trace_ids:
                self.trace_ids.update(trace_ids)
            self._cond.notify_all()

    def _note_refused(self, status: int, message: str) -> None:
        log.info("refused a request (%s): %s", status, message)
        with self._cond:
            self.refused += 1
            self.last_refusal = f"{status} {message}"
            self._cond.notify_all()


__all__ = ["Limits", "Receiver", "is_loopback", "parse_listen"]

"""The demo's client: paced requests through the ingress, one CLIENT span per request.

It stands outside the cluster (service.name ``loadgen``, ``tracekit.component=client``, no ``k8s.*``
attributes), sends ``Host: shop.example.com`` (the Ingress rule's host) to the ingress address, and
starts each request's trace: the trace id it prints is the one every hop below joins.

With ``--resolver HOST:PORT`` every request first resolves ``--host`` through that DNS server, in a
span of its own (``DNS A``: the lookup is part of the client's journey, before any packet goes to the
cluster), and connects to the answer on ``--target``'s port; a failed lookup fails the request.

Run as ``python -m demo_app.loadgen --target URL --requests N``. It prints one JSON line per finished
request (``{"event": "done", "i", "trace_id", "method", "path", "status", "error", "ms"}``), then
flushes its spans and prints ``{"event": "finished"}``. Status 0 means no HTTP answer (transport error).
"""

from __future__ import annotations

import argparse
import http.client
import json
import queue
import random
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from demo_app import telemetry
from demo_app.network.dns import lookup
from tracekit import attributes as a

_print_lock = threading.Lock()


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: bytes | None = None


def plan(n: int, seed: int, products: int = 20) -> list[Call]:
    """The request mix, repeatable for a seed: 60% one product, 25% the list, 15% an order.

    Each of these makes exactly one SQL statement except the order (two, in one transaction), so the
    median request runs one statement: a per-statement ``DB_DELAY_MS`` shows up once in the db p50.
    """
    rng = random.Random(seed)
    calls = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.60:
            calls.append(Call("GET", f"/products/{rng.randint(1, products)}"))
        elif roll < 0.85:
            calls.append(Call("GET", "/products"))
        else:
            body = json.dumps({"product_id": rng.randint(1, products), "quantity": rng.randint(1, 3)})
            calls.append(Call("POST", "/orders", body.encode()))
    return calls


def emit(event: str, **fields: Any) -> None:
    with _print_lock:
        sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
        sys.stdout.flush()


class UnresolvedName(OSError):
    """The name did not resolve (NXDOMAIN, SERVFAIL, no A record)."""


class LoadGenerator:
    def __init__(
        self,
        target: str,
        host: str,
        calls: list[Call],
        rate: float,
        concurrency: int,
        resolver: tuple[str, int] | None = None,
    ) -> None:
        parts = urlsplit(target)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.resolver = resolver
        self.host = host
        self.calls = calls
        self.rate = rate
        self.concurrency = max(1, concurrency)
        self.tracer = trace.get_tracer("demo_app.loadgen")
        self._queue: queue.Queue[int] = queue.Queue()

    def run(self) -> None:
        for i in range(len(self.calls)):
            self._queue.put(i)
        self._t0 = time.monotonic()
        threads = [threading.Thread(target=self._worker, daemon=True) for _ in range(self.concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _worker(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while True:
            try:
                i = self._queue.get_nowait()
            except queue.Empty:
                break
            if self.rate > 0:  # open-loop pacing: request i is due at t0 + i / rate
                delay = self._t0 + i / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            conn = self._one(conn, i, self.calls[i])
        if conn is not None:
            conn.close()

    def _resolve(self) -> str:
        """The address to connect to: a DNS lookup in a span of its own, or ``--target``'s host."""
        if self.resolver is None:
            return self.address[0]
        attrs: dict[str, AttributeValue] = {
            a.COMPONENT: "client",
            "dns.question.name": self.host,
            "server.address": self.resolver[0],
            "server.port": self.resolver[1],
            "network.peer.address": self.resolver[0],
            "network.peer.port": self.resolver[1],
            "network.transport": "udp",
        }
        with self.tracer.start_as_current_span("DNS A", kind=SpanKind.CLIENT, attributes=attrs) as span:
            answer = lookup(self.host, self.resolver)  # OSError (a timeout) propagates to the request
            if not answer.addresses:
                span.set_attribute("error.type", answer.rcode)
                span.set_status(Status(StatusCode.ERROR, f"{self.host}: {answer.rcode}"))
                raise UnresolvedName(f"{self.host} does not resolve ({answer.rcode})")
            span.set_attribute("dns.answers", list(answer.addresses))
            return str(answer.addresses[0])

    def _one(
        self, conn: http.client.HTTPConnection | None, i: int, call: Call
    ) -> http.client.HTTPConnection | None:
        attrs: dict[str, AttributeValue] = {
            a.COMPONENT: "client",
            "http.request.method": call.method,
            "url.full": f"http://{self.host}{call.path}",
            "server.address": self.host,
            "server.port": 80,
            "network.peer.port": self.address[1],
        }
        started = time.perf_counter()
        status, error = 0, None
        with self.tracer.start_as_current_span(call.method, kind=SpanKind.CLIENT, attributes=attrs) as span:
            headers = {
                "Host": self.host,
                "User-Agent": "tracekit-demo-loadgen/0.1",
                "Accept": "application/json",
            }
            if call.body is not None:
                headers["Content-Type"] = "application/json"
            propagate.inject(headers)
            trace_id = f"{span.get_span_context().trace_id:032x}"
            try:
                address = self._resolve()
                span.set_attribute("network.peer.address", address)
                if conn is not None and conn.host != address:  # the name moved: a new connection
                    conn.close()
                    conn = None
                if conn is None:
                    conn = http.client.HTTPConnection(address, self.address[1], timeout=30)
                conn.request(call.method, call.path, body=call.body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
                if response.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as exc:
                error = f"{type(exc).__name__}: {exc}"
                span.record_exception(exc)
                span.set_attribute("error.type", type(exc).__name__)
                span.set_status(Status(StatusCode.ERROR, error))
                if conn is not None:
                    conn.close()
                conn = None
            if status:
                span.set_attribute("http.response.status_code", status)
                if status >= 400:  # HTTP client convention: 4xx and 5xx are errors for the caller
                    span.set_status(Status(StatusCode.ERROR))
        ms = (time.perf_counter() - started) * 1000.0
        emit(
            "done",
            i=i,
            trace_id=trace_id,
            method=call.method,
            path=call.path,
            status=status,
            error=error,
            ms=ms,
        )
        return conn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo_app.loadgen", description=__doc__.split("\n")[0])
    parser.add_argument("--target", required=True, help="ingress base URL, e.g. http://127.0.0.1:8000")
    parser.add_argument("--host", default="shop.example.com", help="Host header (the Ingress rule's host)")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument(
        "--rate", type=float, default=50.0, help="requests per second (0: as fast as possible)"
    )
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--resolver", help="HOST:PORT of the DNS server to resolve --host through")
    args = parser.parse_args(argv)
    resolver = None
    if args.resolver:
        host, _, port = args.resolver.rpartition(":")
        resolver = (host, int(port))
    telemetry.configure("loadgen")
    generator = LoadGenerator(
        args.target, args.host, plan(args.requests, args.seed), args.rate, args.concurrency, resolver
    )
    try:
        generator.run()
    finally:
        telemetry.flush()
    emit("finished", requests=args.requests)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Fixtures shared with tests/k8s, plus one in-memory SDK pipeline and a clean tracekit set-up per test."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.k8s.conftest import dead_port, kube, seed  # noqa: F401  (fixtures)
from tracekit.tracing import provider


@pytest.fixture
def memory() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """A TracerProvider exporting synchronously into memory; tracekit is reset afterwards."""
    exporter = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    yield tp, exporter
    provider.shutdown()
    tp.shutdown()


@pytest.fixture(autouse=True)
def _reset_tracekit() -> Iterator[None]:
    yield
    provider.shutdown()


@pytest.fixture
def blackhole() -> Iterator[tuple[str, threading.Event]]:
    """A 'collector' that accepts connections and never answers: exports hang until their timeout."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    connected = threading.Event()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            held.append(conn)
            connected.set()

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}", connected
    stop.set()
    t.join(2)
    for c in held:
        c.close()
    srv.close()

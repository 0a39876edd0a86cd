"""Fixtures shared with tests/k8s, plus one in-memory SDK pipeline and a clean tracekit set-up per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.k8s.conftest import blackhole, dead_port, kube, seed  # noqa: F401  (fixtures)
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

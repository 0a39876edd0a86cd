"""One request's way from received bytes to an acknowledged line, the same for OTLP/HTTP and OTLP/gRPC.

decompress (gzip, within the per-request cap and the memory budget) -> decode and check the work
limits (:func:`tracekit.receiver.codec.ingest`) -> append the line whole (:class:`Store`) -> count ->
forward. Each step's refusal is an exception the protocol turns into its own status: a
:class:`~tracekit.receiver.codec.PayloadError` (400/413, INVALID_ARGUMENT/RESOURCE_EXHAUSTED), an
:class:`~tracekit.receiver.limits.OverBudget` or a :class:`~tracekit.receiver.store.StoreError` (503
with Retry-After, UNAVAILABLE: the client retries).
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from tracekit.receiver import codec
from tracekit.receiver.fastpath import Work
from tracekit.receiver.forward import Forwarder
from tracekit.receiver.limits import DECODE_COST, Budget, Limits, Reservation
from tracekit.receiver.store import Store

log = logging.getLogger(__name__)


class Counters(Protocol):
    """Where the pipeline reports (the :class:`~tracekit.receiver.server.Receiver`)."""

    def _accepted(self, spans: int, trace_ids: set[str]) -> None: ...


class Pipeline:
    """Shared by every server thread: the store, the budget and the forwarder are thread-safe."""

    def __init__(
        self,
        limits: Limits,
        budget: Budget,
        store: Store,
        counters: Counters,
        *,
        forwarder: Forwarder | None = None,
        track_traces: bool = False,
    ) -> None:
        self.limits = limits
        self.budget = budget
        self.store = store
        self.forwarder = forwarder
        self._counters = counters
        self._track = track_traces
        self._work = Work(limits.max_value_depth, limits.max_attributes, limits.max_attribute_bytes)
        self._lock = threading.Lock()

    def reservation(self) -> Reservation:
        return Reservation(self.budget)

    def process(self, body: bytes | bytearray, media: str, gzipped: bool, held: Reservation) -> int:
        """Store one request's spans; returns how many. ``held`` already covers ``body``."""
        data = body
        if gzipped:
            data = codec.gunzip(body, self.limits.max_decompressed_bytes, held.grow)
        size = len(data)
        charged = 0

        def charge(path: str) -> None:
            nonlocal charged
            cost = DECODE_COST[path] * size
            if held.held - charged + cost > self.budget.total:
                raise codec.PayloadError(
                    f"decoding this {size}-byte body ({path}) needs about {cost} bytes, more than the"
                    f" whole {self.budget.total}-byte memory budget",
                    status=413,
                )
            held.grow(cost - charged)
            charged = cost

        batch = codec.ingest(data, media, self._work, charge)
        line = batch.otlp_json() + b"\n"
        if self.store.keeps:
            self.store.append(line)
        del data, line
        self._counters._accepted(batch.spans, batch.trace_ids() if self._track else set())
        if self.forwarder is not None:
            # A JSON request has no protobuf message yet: the forwarding thread builds it.
            self.forwarder.submit(batch.protobuf)
        return batch.spans


__all__ = ["Pipeline"]

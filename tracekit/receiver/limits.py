"""What one receiver lets a client cost it: connections, time, memory and work per request.

Every bound here is what keeps ``tracekit collect`` answering under hostile traffic. The defaults follow
the OpenTelemetry Collector where it has a counterpart (20 MiB request bodies, a one-minute idle
timeout) and otherwise what a 2-core machine absorbs; ``docs/receiver.md`` lists them with the status
each one answers.
"""

from __future__ import annotations

import ctypes
import resource
import threading
from dataclasses import dataclass

#: Descriptors kept free for the output file, the forwarder, logging and the interpreter itself.
RESERVED_DESCRIPTORS = 64


@dataclass(frozen=True)
class Limits:
    """Bounds of one receiver (both protocols). Sizes are bytes, times seconds."""

    #: Largest request body as sent (compressed): 413 beyond, without reading it. The Collector's
    #: default ``max_request_body_size``.
    max_body_bytes: int = 20 * 1024 * 1024
    #: Largest body once decompressed: a gzip bomb is refused after at most this many bytes (413).
    max_decompressed_bytes: int = 64 * 1024 * 1024
    #: Memory budget across every request in flight: bodies as received, decompressed bytes and the
    #: estimated cost of decoding them (see ``DECODE_COST``). A request that does not fit is answered
    #: 503 with Retry-After, as the Collector's memory_limiter refuses data, and the client retries.
    memory_budget_bytes: int = 512 * 1024 * 1024
    #: Open connections per listener, also capped below the process's descriptor limit. At the cap,
    #: the connection idle the longest makes room for a new one (as nginx reuses keep-alive
    #: connections); with none idle, the new connection is closed at once.
    max_connections: int = 1024
    #: A connection may wait this long for a request after connecting or after its last answer
    #: (the Collector's default ``idle_timeout``).
    idle_timeout: float = 60.0
    #: Once a request has begun, its headers must be complete within this time.
    header_timeout: float = 10.0
    #: Once the headers are in, the whole body must arrive within this time (a stalled or trickled
    #: body is cut off with 408).
    body_timeout: float = 30.0
    #: Nesting of attribute values (arrays and key-value lists inside each other): 400 beyond.
    max_value_depth: int = 16
    #: Attributes on one span, event, link, resource or scope: 400 beyond.
    max_attributes: int = 4096
    #: Largest single string or bytes attribute value, in bytes of its encoded form: 400 beyond.
    max_attribute_bytes: int = 1024 * 1024
    #: Threads decoding and writing requests (the work is CPU-bound; more threads only add memory).
    workers: int = 2

    def connection_cap(self, listeners: int = 1) -> int:
        """``max_connections``, lowered so that every listener at its cap still fits the descriptor
        limit (``RLIMIT_NOFILE``) with some to spare: the server never runs out of descriptors, so it
        never spins on a failing ``accept``."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return self.max_connections
        room = max(1, (soft - RESERVED_DESCRIPTORS) // max(1, listeners))
        return max(1, min(self.max_connections, room))


#: Estimated peak memory of decoding a body, as a multiple of its decompressed size, by the path it
#: takes: protobuf (message objects, the JSON dict, the line), canonical OTLP/JSON (msgspec Structs
#: and the line) and the generic JSON path (``json.loads`` dicts, then ``json_format``). Measured with
#: ``tracemalloc`` on exporter-shaped batches (17x, 5.5x and 7.3x, plus protobuf's arena, which
#: tracemalloc does not see); the memory budget charges this much while decoding, so a body whose
#: decoding alone would not fit the whole budget is refused with 413.
DECODE_COST = {"protobuf": 20, "json": 6, "json-generic": 12}


class OverBudget(Exception):
    """The memory budget cannot take this request now; answer 503 with Retry-After."""


class Budget:
    """A counter of bytes reserved by requests in flight, shared by both protocols' servers.

    Reservations are made before the memory is used (before reading a body, before each decompressed
    chunk, before decoding), so the sum over concurrent requests stays under the budget whatever they
    send. Thread-safe: the HTTP event loop, the worker threads and gRPC's threads all use it.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self._used = 0
        self._lock = threading.Lock()
        #: Reservations refused since start.
        self.refusals = 0
        #: The highest total reserved at once.
        self.peak = 0

    @property
    def used(self) -> int:
        return self._used

    def reserve(self, size: int) -> None:
        """Take ``size`` bytes or raise :class:`OverBudget` (taking nothing)."""
        with self._lock:
            if self._used + size > self.total:
                self.refusals += 1
                raise OverBudget(
                    f"memory budget exhausted ({self._used} of {self.total} bytes in use by requests"
                    f" in flight, {size} more needed): retry later"
                )
            self._used += size
            self.peak = max(self.peak, self._used)

    def release(self, size: int) -> None:
        with self._lock:
            self._used -= size


class Reservation:
    """What one request holds from the :class:`Budget`; :meth:`close` gives all of it back."""

    __slots__ = ("_budget", "held")

    def __init__(self, budget: Budget) -> None:
        self._budget = budget
        self.held = 0

    def grow(self, size: int) -> None:
        self._budget.reserve(size)
        self.held += size

    def shrink(self, size: int) -> None:
        size = min(size, self.held)
        self._budget.release(size)
        self.held -= size

    def close(self) -> None:
        self.shrink(self.held)


#: glibc ``mallopt`` parameters (malloc.h).
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def tune_allocator() -> bool:
    """Make the process's resident size follow the budget: with glibc, buffers of 1 MiB and more are
    mapped on their own and unmapped when freed, and two malloc arenas serve every thread.

    glibc's default raises its mmap threshold each time a large block is freed (up to 32 MiB), after
    which request bodies are carved from per-thread heaps that keep their freed pages: measured with
    six concurrent gzip bombs under a 64 MiB budget, the peak resident size grew by 119 MiB with the
    defaults and by 70 MiB with these settings. For the ``tracekit collect`` process only (it changes
    the whole process); False where the C library is not glibc.
    """
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 1024 * 1024)) and bool(mallopt(_M_ARENA_MAX, 2))


__all__ = ["DECODE_COST", "Budget", "Limits", "OverBudget", "Reservation", "tune_allocator"]

"""The span pipeline's last step: a bounded queue, one export thread, exact counts and a bounded shutdown.

Why not the SDK's ``BatchSpanProcessor``: its shutdown waits up to 30 s for the worker and then for every
queued batch's export (each up to the exporter's timeout; opentelemetry-python#4555 and #4568 note that
the export and flush timeouts are not applied), it counts nothing a program can read, and it logs one line
per dropped span. This processor keeps its behaviour where it matters (a bounded queue, batches of
``OTEL_BSP_MAX_EXPORT_BATCH_SIZE`` exported by one daemon thread at least every ``OTEL_BSP_SCHEDULE_DELAY``,
requests never wait for the collector) and adds:

* **a deadline on the way out**: :meth:`shutdown` exports until the :class:`~tracekit.tracing.shutdown.Budget`
  runs out, then writes off what is left, so a hung collector costs the bound, not 10 s per batch;
* **exact counts** (:meth:`counts`): every sampled span that ends is, at any moment, exported (the
  collector acknowledged it), failed (sent, and refused, errored, or unanswered by the deadline), dropped
  (never sent: the queue was full, it ended after shutdown, or it was still queued at the deadline), or
  pending (queued or in flight);
* **honest logging**: a total of those counts when spans were lost, at most once per ``log_interval``
  (written by the export thread, never by a request), and a final line at shutdown.

A process forked without Python's fork hooks (uwsgi forks its workers in C) is noticed by its new pid on
the next span, and gets its own export thread, as the SDK's processor does.

When the queue is full the span that just ended is the one dropped (the SDK drops the oldest): counting
it costs one lock taken on that rare path only, and a full queue drops spans either way.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from opentelemetry.context import Context
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from tracekit.tracing.shutdown import Budget

log = logging.getLogger("tracekit.tracing")

#: Serializes the restart of a processor in a child process forked behind Python's back.
_FORK_LOCK = threading.Lock()
#: Slack kept out of the export deadline so the write-off and the final line fit inside the bound.
_WRITE_OFF_SLACK = 0.1


@dataclass(frozen=True)
class ExportCounts:
    """What became of the sampled spans that ended in this process (see the module docstring)."""

    exported: int
    failed: int
    dropped: int
    pending: int

    @property
    def ended(self) -> int:
        return self.exported + self.failed + self.dropped + self.pending

    @property
    def lost(self) -> int:
        return self.failed + self.dropped

    def describe(self) -> str:
        return (
            f"{self.exported} exported, {self.dropped} dropped (never sent: queue full or shutdown), "
            f"{self.failed} failed (collector refused, errored or did not answer), {self.pending} pending"
        )


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = (env.get(name) or "").strip()
    try:
        value = int(raw) if raw else default
    except ValueError:
        value = 0
    if value <= 0:
        log.warning("tracekit: %s=%r is not a positive integer; using %d", name, raw, default)
        return default
    return value


class BoundedBatchSpanProcessor(SpanProcessor):
    """Batch export with exact counts and a bounded shutdown; ``OTEL_BSP_*`` variables as in the SDK.

    :param budget: the time the way out may take (shared with the signal handlers); default 5 s.
    :param prepare: applied to every batch before export (tracekit's redaction), in the export thread.
    :param log_interval: seconds between two "spans lost" totals in the log.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        max_queue_size: int | None = None,
        schedule_delay_millis: float | None = None,
        max_export_batch_size: int | None = None,
        budget: Budget | None = None,
        prepare: Callable[[Sequence[ReadableSpan]], Sequence[ReadableSpan]] | None = None,
        log_interval: float = 60.0,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.exporter = exporter
        self.max_queue_size = max_queue_size or _env_int(env, "OTEL_BSP_MAX_QUEUE_SIZE", 2048)
        self.schedule_delay = (
            schedule_delay_millis or _env_int(env, "OTEL_BSP_SCHEDULE_DELAY", 5000)
        ) / 1000.0
        self.max_export_batch_size = min(
            max_export_batch_size or _env_int(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512),
            self.max_queue_size,
        )
        self.budget = budget or Budget(5.0)
        self.prepare = prepare
        self.log_interval = log_interval
        self._init_state()
        if hasattr(os, "register_at_fork"):
            # The export thread does not survive fork (gunicorn --preload): the child starts its own,
            # with an empty queue and zero counts (the parent's spans are the parent's to export).
            ref = weakref.ref(self)

            def reinit_in_child() -> None:
                processor = ref()
                if processor is not None:
                    processor._init_state()

            os.register_at_fork(after_in_child=reinit_in_child)

    def _init_state(self) -> None:
        self._pid = os.getpid()
        self._queue: collections.deque[ReadableSpan] = collections.deque()
        self._lock = threading.Lock()
        self._flushed = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._exported = 0
        self._failed = 0
        self._dropped = 0
        #: (batch token, size) of the batch the exporter holds, or None.
        self._in_flight: tuple[object, int] | None = None
        self._flush_requested = 0
        self._flush_done = 0
        self._closed = False
        self._deadline: float | None = None
        self._reported_lost = 0
        self._last_report = 0.0
        self._thread = threading.Thread(target=self._work, name="tracekit-span-export", daemon=True)
        self._thread.start()

    # --- the request path -------------------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is None or not context.trace_flags.sampled:
            return
        if self._pid != os.getpid():
            self._after_fork()
        if self._closed or len(self._queue) >= self.max_queue_size:
            with self._lock:
                self._dropped += 1
            return
        self._queue.append(span)
        if len(self._queue) >= self.max_export_batch_size and not self._wake.is_set():
            self._wake.set()

    def _after_fork(self) -> None:
        """A fork that ran no Python fork hooks (uwsgi forks its workers in C): start afresh here too."""
        with _FORK_LOCK:
            if self._pid != os.getpid():
                self._init_state()

    # --- counts -------------------------------------------------------------------------------

    def counts(self) -> ExportCounts:
        """The exact counts now (see :class:`ExportCounts`)."""
        with self._lock:
            in_flight = self._in_flight[1] if self._in_flight else 0
            return ExportCounts(self._exported, self._failed, self._dropped, len(self._queue) + in_flight)

    @property
    def dropped(self) -> int:
        return self.counts().dropped

    # --- the export thread --------------------------------------------------------------------

    def _work(self) -> None:
        # The exporter's own HTTP calls must not become spans (they would be exported, and so on).
        with suppress_instrumentation():
            self._loop()

    def _loop(self) -> None:
        while True:
            self._wake.wait(self.schedule_delay)
            self._wake.clear()
            requested = self._flush_requested
            self._export_queued()
            with self._flushed:
                self._flush_done = max(self._flush_done, requested)
                self._flushed.notify_all()
            if self._closed:
                return  # shutdown writes the final line
            self._report()

    def _export_queued(self) -> None:
        queue = self._queue
        while queue:
            deadline = self._deadline
            if deadline is not None and time.monotonic() >= deadline:
                return
            batch: list[ReadableSpan] = []
            token = object()
            with self._lock:  # taken off the queue and put in flight at once: counts() never misses one
                while queue and len(batch) < self.max_export_batch_size:
                    batch.append(queue.popleft())
                if not batch:
                    return  # shutdown wrote the queue off meanwhile
                self._in_flight = (token, len(batch))
            self._settle(token, len(batch), self._export(batch))
            if not self._closed:
                self._report()

    def _settle(self, token: object, n: int, ok: bool) -> None:
        """Count a batch's outcome, unless shutdown already wrote it off as failed."""
        with self._lock:
            in_flight = self._in_flight
            if in_flight is None or in_flight[0] is not token:
                return
            self._in_flight = None
            if ok:
                self._exported += n
            else:
                self._failed += n

    def _export(self, batch: list[ReadableSpan]) -> bool:
        try:
            spans = self.prepare(batch) if self.prepare is not None else batch
            return self.exporter.export(spans) is SpanExportResult.SUCCESS
        except Exception as exc:  # an exporter bug must not kill the export thread
            log.warning("tracekit: span exporter raised %s: %s", type(exc).__name__, exc)
            return False

    def _report(self) -> None:
        counts = self.counts()
        if counts.lost <= self._reported_lost:
            return
        now = time.monotonic()
        if self._reported_lost and now - self._last_report < self.log_interval:
            return
        self._reported_lost = counts.lost
        self._last_report = now
        log.warning("tracekit: spans lost (collector slow or unreachable?): %s so far", counts.describe())

    # --- flush and shutdown -------------------------------------------------------------------

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export what is queued now; wait at most ``timeout_millis``. True when all of it was sent."""
        if self._closed:
            return False
        with self._flushed:
            self._flush_requested += 1
            wanted = self._flush_requested
            self._wake.set()
            return self._flushed.wait_for(lambda: self._flush_done >= wanted, timeout_millis / 1000.0)

    def shutdown(self, timeout_millis: float | None = None) -> None:
        """Export what is queued until the deadline (default: what the budget has left), then stop.

        Spans still queued at the deadline are counted dropped, a batch the collector has not answered
        by then failed; the exporter is shut down without waiting for it; one line gives the totals.
        """
        if self._closed:
            return
        seconds = self.budget.left() if timeout_millis is None else timeout_millis / 1000.0
        start = time.monotonic()
        deadline = start + max(0.0, seconds - _WRITE_OFF_SLACK)
        self._deadline = deadline
        self._closed = True
        self._wake.set()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            if self._in_flight is not None:
                self._failed += self._in_flight[1]
                self._in_flight = None
            while self._queue:
                self._queue.popleft()
                self._dropped += 1
        threading.Thread(
            target=self._shutdown_exporter, name="tracekit-exporter-shutdown", daemon=True
        ).start()
        counts = self.counts()
        level = logging.WARNING if counts.lost else logging.INFO
        took = time.monotonic() - start
        log.log(level, "tracekit: span export stopped after %.1f s: %s", took, counts.describe())

    def _shutdown_exporter(self) -> None:
        try:
            self.exporter.shutdown()
        except Exception as exc:
            log.debug("tracekit: exporter shutdown failed: %s", exc)

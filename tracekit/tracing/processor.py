"""A BatchSpanProcessor that counts the spans it drops and says so, without flooding the log.

When the collector is unreachable the SDK's processor keeps exporting in its worker thread while
requests keep ending spans into a bounded queue: requests are never slowed, and once the queue is full
the oldest spans are dropped. The SDK logs one warning *per dropped span*; we count drops instead
(:attr:`CountingBatchSpanProcessor.dropped`), log the first and then at most one summary a minute, and
silence the SDK's per-span line.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor

log = logging.getLogger("tracekit.tracing")

_SDK_QUEUE_FULL = "Queue full, dropping"


class _QueueFullFilter(logging.Filter):
    """Drop the SDK's per-span "Queue full" warning: the counting processor reports drops itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_SDK_QUEUE_FULL)


_filter_installed = False


def _install_filter() -> None:
    global _filter_installed
    if not _filter_installed:
        logging.getLogger("opentelemetry.sdk._shared_internal").addFilter(_QueueFullFilter())
        _filter_installed = True


class CountingBatchSpanProcessor(BatchSpanProcessor):
    """:class:`BatchSpanProcessor` plus a drop counter and rate-limited drop logging."""

    #: Seconds between two "still dropping" summaries.
    log_interval = 60.0

    def __init__(self, exporter: Any, **kwargs: Any) -> None:
        super().__init__(exporter, **kwargs)
        self.dropped = 0
        self._last_log = 0.0
        self._lock = threading.Lock()
        _install_filter()

    def _queue_full(self) -> bool:
        # The SDK keeps its bounded deque private; if that ever changes we just stop counting.
        inner = getattr(self, "_batch_processor", None)
        queue = getattr(inner, "_queue", None)
        limit = getattr(inner, "_max_queue_size", None)
        return queue is not None and limit is not None and len(queue) >= limit

    def on_end(self, span: ReadableSpan) -> None:
        if span.context and span.context.trace_flags.sampled and self._queue_full():
            with self._lock:
                self.dropped += 1
                now = time.monotonic()
                first = self.dropped == 1
                if first or now - self._last_log >= self.log_interval:
                    self._last_log = now
                    log.warning(
                        "tracekit: span export queue full (collector slow or unreachable?); "
                        "%d span(s) dropped so far",
                        self.dropped,
                    )
        super().on_end(span)

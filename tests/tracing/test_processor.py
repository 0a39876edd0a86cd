"""tracekit's span processor against real collectors on loopback: exact counts, honest logs, bounded stop."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider

from tests.tracing.otlp_receiver import OtlpReceiver
from tracekit.tracing.processor import BoundedBatchSpanProcessor
from tracekit.tracing.shutdown import Budget


def _pipeline(
    endpoint: str, *, queue: int, batch: int, budget: float = 30.0, timeout: float = 20.0, **kw
) -> tuple[TracerProvider, BoundedBatchSpanProcessor]:
    exporter = OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces", timeout=timeout)
    processor = BoundedBatchSpanProcessor(
        exporter,
        max_queue_size=queue,
        max_export_batch_size=batch,
        schedule_delay_millis=50,
        budget=Budget(budget),
        environ={},
        **kw,
    )
    tp = TracerProvider(shutdown_on_exit=False)
    tp.add_span_processor(processor)
    return tp, processor


def _wait(predicate, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _end_spans(tp: TracerProvider, threads: int, per_thread: int) -> None:
    tracer = tp.get_tracer("t")

    def work(t: int) -> None:
        for i in range(per_thread):
            tracer.start_span(f"s-{t}-{i}").end()

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def test_counts_are_exact_when_a_slow_collector_forces_drops(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tracekit")
    with OtlpReceiver(delay=0.2) as receiver:
        tp, processor = _pipeline(receiver.endpoint, queue=8, batch=4, log_interval=3600)
        _end_spans(tp, threads=4, per_thread=100)
        assert _wait(lambda: any("spans lost" in r.getMessage() for r in caplog.records))
        processor.shutdown()
        counts = processor.counts()
        got = len(receiver.spans)
    assert counts.ended == 400 and counts.pending == 0 and counts.failed == 0
    assert counts.exported == got  # what the collector acknowledged, span for span
    assert counts.dropped == 400 - got and counts.dropped > 0
    lost = [r.getMessage() for r in caplog.records if "spans lost" in r.getMessage()]
    assert len(lost) == 1  # the first loss at once, then at most one line per log_interval
    (final,) = [r for r in caplog.records if "span export stopped" in r.getMessage()]
    assert final.levelno == logging.WARNING
    assert f"{got} exported, {400 - got} dropped" in final.getMessage()


def test_all_spans_exported_gives_a_quiet_final_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tracekit")
    with OtlpReceiver() as receiver:
        tp, processor = _pipeline(receiver.endpoint, queue=2048, batch=64)
        _end_spans(tp, threads=2, per_thread=150)
        assert processor.force_flush(30_000)
        assert processor.counts().exported == 300 == len(receiver.spans)
        processor.shutdown()
    (final,) = [r for r in caplog.records if "span export stopped" in r.getMessage()]
    assert final.levelno == logging.INFO and "300 exported, 0 dropped" in final.getMessage()
    assert not [r for r in caplog.records if "spans lost" in r.getMessage()]


def test_hung_collector_with_queued_batches_stops_within_the_budget(blackhole) -> None:
    """Three batches queued, each export could wait 60 s: shutdown writes them off when the budget ends."""
    endpoint, connected = blackhole
    tp, processor = _pipeline(endpoint, queue=30, batch=10, budget=1.0, timeout=60.0)
    _end_spans(tp, threads=1, per_thread=30)
    assert connected.wait(10)
    done = threading.Event()
    stopper = threading.Thread(target=lambda: (processor.shutdown(), done.set()), daemon=True)
    stopper.start()
    # Unbounded, this would take 3 x 60 s; the wait below only guards against hanging the suite.
    assert done.wait(30), "shutdown did not respect its budget"
    counts = processor.counts()
    assert counts.exported == 0 and counts.pending == 0
    assert counts.failed == 10 and counts.dropped == 20  # one batch in flight, two never sent


def test_spans_ended_after_shutdown_are_counted_dropped() -> None:
    with OtlpReceiver() as receiver:
        tp, processor = _pipeline(receiver.endpoint, queue=16, batch=4)
        _end_spans(tp, threads=1, per_thread=5)
        processor.shutdown()
        _end_spans(tp, threads=1, per_thread=3)
        counts = processor.counts()
        assert (counts.exported, counts.dropped) == (5, 3) == (len(receiver.spans), 3)


def test_unsampled_spans_are_not_counted() -> None:
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    with OtlpReceiver() as receiver:
        exporter = OTLPSpanExporter(endpoint=f"{receiver.endpoint}/v1/traces")
        processor = BoundedBatchSpanProcessor(exporter, budget=Budget(10), environ={})
        tp = TracerProvider(sampler=ALWAYS_OFF, shutdown_on_exit=False)
        tp.add_span_processor(processor)
        _end_spans(tp, threads=1, per_thread=10)
        processor.shutdown()
    assert processor.counts().ended == 0 and receiver.spans == []

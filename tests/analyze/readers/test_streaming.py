"""Collector JSONL is streamed: traces come out while the file is still being read, memory stays bounded."""

from __future__ import annotations

import json
from pathlib import Path

from bench.tracegen import write_otlp_jsonl
from tracekit.analyze.readers import read_traces


class Tell:
    """A binary file wrapper recording how far the reader had read when each trace came out."""

    def __init__(self, path: Path) -> None:
        self.f = open(path, "rb")  # noqa: SIM115
        self.name = str(path)

    def read(self, n: int = -1) -> bytes:
        return self.f.read(n)

    def tell(self) -> int:
        return self.f.tell()


def test_interleaved_collector_file_streams_without_splitting_traces(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    spans = write_otlp_jsonl(path, 3000, 7, batch_spans=200, traces_per_second=20000)
    size = path.stat().st_size
    src = Tell(path)
    positions, counts = [], {}
    warnings: list[str] = []
    for trace in read_traces(src, on_warning=warnings.append, window_spans=2000):
        positions.append(src.tell())
        counts[trace.trace_id] = counts.get(trace.trace_id, 0) + len(trace.spans)
        assert trace.warnings == [], trace.warnings
        assert len(trace.spans) == 7  # never split
    assert sum(counts.values()) == spans == 3000 * 7 and len(counts) == 3000
    assert warnings == []
    assert positions[0] < size / 2  # the first traces came out long before the end of the file
    # the lines really interleave traces (otherwise this test proves nothing)
    first = json.loads(path.read_text().splitlines()[0])
    ids = {s["traceId"] for rs in first["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]}
    assert len(ids) > 20


def test_open_span_cap_and_late_spans_give_warnings(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    write_otlp_jsonl(path, 200, 7, batch_spans=50, traces_per_second=20000)
    warnings: list[str] = []
    traces = list(read_traces(path, on_warning=warnings.append, window_spans=1, max_open_spans=20))
    assert sum(len(t.spans) for t in traces) == 1400  # nothing lost
    flagged = [w for t in traces for w in t.warnings]
    assert any("before it was complete" in w for w in flagged)
    assert any("arrived after it was emitted" in w for w in flagged)
    assert len({t.trace_id for t in traces}) == 200 < len(traces)

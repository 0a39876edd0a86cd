"""Bad input: one clear line naming file, line and field; partial input gives partial results + warnings."""

from __future__ import annotations

import io
import json
import os
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from tests.analyze.cli_run import run
from tracekit.analyze.api import Analysis
from tracekit.analyze.readers import read_traces
from tracekit.errors import TraceFormatError, UnknownFormatError

DATA = Path(__file__).parents[1] / "data"
TID = "ab" * 16


def span(sid: str, parent: str | None = None, *, tid: str = TID, start: int = 1000, end: int = 2000) -> dict:
    d: dict[str, Any] = {
        "traceId": tid,
        "spanId": sid,
        "name": f"op-{sid[-2:]}",
        "kind": 2,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(end),
    }
    if parent:
        d["parentSpanId"] = parent
    return d


def line(*spans: dict) -> str:
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": list(spans)}]}]})


def fail(path: Path | io.BytesIO, exc: type[Exception] = TraceFormatError, **kw: Any) -> str:
    with pytest.raises(exc) as info:
        list(read_traces(path, **kw))
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_empty_and_blank_files(tmp_path: Path) -> None:
    (tmp_path / "empty.json").write_bytes(b"")
    (tmp_path / "blank.jsonl").write_bytes(b"\n  \n\t\n")
    assert (
        fail(tmp_path / "empty.json", UnknownFormatError)
        == f"{tmp_path / 'empty.json'}: empty input (no trace data)"
    )
    assert "empty input" in fail(tmp_path / "blank.jsonl", UnknownFormatError)


def test_truncated_document_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    path.write_bytes((DATA / "readers_otlp_document.json").read_bytes()[:1500])
    assert fail(path) == f"{path}: OTLP JSON: truncated JSON (the input ends in the middle of a value)"


def test_truncated_last_line_keeps_the_earlier_lines(tmp_path: Path) -> None:
    path = tmp_path / "crash.jsonl"
    good = line(span("0000000000000001"))
    path.write_text(good + "\n" + good[: len(good) // 2])
    warnings: list[str] = []
    (trace,) = read_traces(path, on_warning=warnings.append)
    assert len(trace.spans) == 1
    assert warnings == [f"{path}:2: OTLP JSON: truncated JSON (the input ends in the middle of a value)"]


def test_another_json_document_entirely(tmp_path: Path) -> None:
    (tmp_path / "pkg.json").write_text(
        json.dumps({"name": "x", "version": "1.0", "dependencies": {}}, indent=2)
    )
    assert "not a trace file" in fail(tmp_path / "pkg.json", UnknownFormatError)
    (tmp_path / "data.json").write_text(json.dumps({"data": {"rows": [1, 2]}}, indent=2))
    message = fail(tmp_path / "data.json")
    assert message.startswith(f"{tmp_path / 'data.json'}: Jaeger JSON: field $.data: Expected `array")


@pytest.mark.parametrize("content", [os.urandom(4096), b"\x89PNG\r\n\x1a\n\x00\x00", b"hello, world\n"])
def test_binary_garbage_and_plain_text(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "garbage.bin"
    path.write_bytes(b"\x01" + content)  # never accidentally starting with { or [
    assert "not a trace file" in fail(path, UnknownFormatError)


def test_invalid_utf8_line_is_skipped_with_its_line_number(tmp_path: Path) -> None:
    bad = line(span("0000000000000002")).replace("op-02", "op-\udcff").encode("utf-8", "surrogateescape")
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(line(span("0000000000000001")).encode() + b"\n" + bad + b"\n")
    warnings: list[str] = []
    (trace,) = read_traces(path, on_warning=warnings.append)
    assert [s.span_id for s in trace.spans] == ["0000000000000001"]
    assert warnings == [f"{path}:2: OTLP JSON: invalid UTF-8 in a string (the content is not UTF-8 text)"]
    only_bad = tmp_path / "bad.jsonl"
    only_bad.write_bytes(bad + b"\n")
    assert fail(only_bad).startswith(f"{only_bad}:1: OTLP JSON: invalid UTF-8")


class LazyHugeLine(io.RawIOBase):
    """A stream whose second line is ``size`` bytes long, produced on the fly (never in memory)."""

    def __init__(self, head: bytes, size: int, tail: bytes) -> None:
        self.parts = [head, None, tail]
        self.left = size
        self.name = "huge.jsonl"

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while self.parts:
            part = self.parts[0]
            if part is None:
                if self.left <= 0:
                    self.parts.pop(0)
                    continue
                n = min(len(b), self.left)
                b[:n] = b"x" * n
                self.left -= n
                return n
            if not part:
                self.parts.pop(0)
                continue
            n = min(len(b), len(part))
            b[:n] = part[:n]
            self.parts[0] = part[n:]
            return n
        return 0


def test_a_huge_line_is_skipped_without_loading_it() -> None:
    good = (line(span("0000000000000001")) + "\n").encode()
    tail = b"\n" + (line(span("0000000000000002", "0000000000000001")) + "\n").encode()
    stream = io.BufferedReader(LazyHugeLine(good, 64 * 1024 * 1024, tail), buffer_size=1 << 16)
    warnings: list[str] = []
    tracemalloc.start()
    try:
        traces = list(read_traces(stream, on_warning=warnings.append, max_line_bytes=1024 * 1024))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [len(t.spans) for t in traces] == [2]
    assert warnings == ["huge.jsonl:2: line longer than 1048576 bytes; skipped without loading it"]
    assert peak < 16 * 1024 * 1024, peak


def test_end_before_start_is_clamped_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(line(span("0000000000000001", start=5_000_000, end=2_000_000)) + "\n")
    (trace,) = read_traces(path)
    (s,) = trace.spans
    assert s.start_ns == s.end_ns == 5_000_000
    assert trace.warnings == ["span 0000000000000001: end before start by 3.000 ms; clamped to zero duration"]


def test_ids_of_the_wrong_length_drop_only_that_span(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(
        line(span("0000000000000001"), span("00000000000000000002"), span("0000000000000003", tid="ab" * 17))
        + "\n"
    )
    warnings: list[str] = []
    (trace,) = read_traces(path, on_warning=warnings.append)
    assert [s.span_id for s in trace.spans] == ["0000000000000001"]
    assert trace.warnings == ["span 'op-02' dropped: field spanId: 20 hex characters, expected at most 16"]
    assert warnings == [
        f"{path}:1: span 'op-03' dropped: field traceId: 34 hex characters, expected at most 32"
    ]


def test_duplicate_span_ids_are_kept_by_the_reader_and_dropped_by_the_analysis(tmp_path: Path) -> None:
    """The reader hands every span over; the analysis keeps the first of a span id and says so,
    once (the reader's own "all kept" warning contradicted it)."""
    path = tmp_path / "t.jsonl"
    path.write_text(line(span("0000000000000001"), span("0000000000000002", "0000000000000001")) + "\n")
    path.write_text(path.read_text() + line(span("0000000000000002", "0000000000000001")) + "\n")
    (trace,) = read_traces(path)
    assert len(trace.spans) == 3
    assert trace.warnings == []
    report = Analysis().analyse(trace)
    assert report is not None and len(report["hops"]) == 2
    assert report["warnings"] == ["1 span(s) with a duplicate span id dropped (first one kept)"]


def test_nothing_usable_raises_with_the_first_problem(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"resourceSpans": 5}\n{"resourceSpans": [{"scopeSpans": "x"}]}\n{"resourceSpans": []}\n')
    message = fail(path)
    assert message.startswith(f"{path}:1: OTLP JSON: field $.resourceSpans: Expected `array")
    assert "nothing usable was read" in message
    empty = tmp_path / "e.json"
    empty.write_text('{"data": []}')
    assert fail(empty) == f"{empty}: Jaeger JSON: no spans found"


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    assert fail(tmp_path / "nope.json") == f"{tmp_path / 'nope.json'}: cannot open: No such file or directory"


def test_one_malformed_span_does_not_cost_its_whole_batch(tmp_path: Path) -> None:
    bad = span("0000000000000002", "0000000000000001") | {"startTimeUnixNano": "soon"}
    path = tmp_path / "t.jsonl"
    path.write_text(line(span("0000000000000001"), bad, span("0000000000000003", "0000000000000001")) + "\n")
    warnings: list[str] = []
    (trace,) = read_traces(path, on_warning=warnings.append)
    assert [s.span_id for s in trace.spans] == ["0000000000000001", "0000000000000003"]
    assert warnings == [
        f"{path}:1: span dropped: field $.resourceSpans[0].scopeSpans[0].spans[1].startTimeUnixNano: "
        "Expected `int`, got `str`"
    ]


def test_a_repeated_span_id_is_one_warning_from_the_analysis() -> None:
    # Same id and same kind twice in a Zipkin file (not the shared client/server span Zipkin allows):
    # the reader keeps both and stays silent, the analysis keeps the first and says so, once.
    result = run(str(DATA / "readers_zipkin_repeated_id_and_kind.json"), "--format", "json")
    assert result.exit_code == 0, result.stderr
    (trace,) = json.loads(result.stdout)["traces"]
    assert trace["warnings"] == ["1 span(s) with a duplicate span id dropped (first one kept)"]
    assert [h["name"] for h in trace["hops"]] == ["root", "x"]  # the first "b" kept, "y" dropped

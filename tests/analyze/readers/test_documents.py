"""Whole-document formats read element by element: the same report as decoding the document whole
(or as the same traces one per line), errors naming the element, and memory that follows the
traces, not the file."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.tracegen import write_documents
from tests.analyze.cli_run import one_line_error, run
from tracekit.analyze.plan import MIN_BYTES_ENV
from tracekit.analyze.readers import read_traces
from tracekit.analyze.readers.documents import Element, Rest, iter_values
from tracekit.errors import TraceFormatError

NASTY = (
    b'\xef\xbb\xbf{"total": 2, "data": [ {"traceID": "a]},[{\\"\\\\", "spans": [[1, {"x": "}"}]]},\n'
    b'  {"traceID": "b\\\\", "k": {"data": [9]}} , [] ], "errors": null, "data2": [1, 2]}\n'
    b'[{"id": "]"}, [{"id": 2}]]'
)


def _values(
    data: bytes, key: bytes | None, chunk: int, whole_bytes: int = 0
) -> list[tuple[str, bytes, int, str]]:
    """What :func:`iter_values` hands out (by the scanner unless ``whole_bytes`` says otherwise)."""
    return [
        (type(v).__name__, v.data, v.document, v.path if isinstance(v, Element) else "")
        for v in iter_values(
            io.BytesIO(data), "f.json", key=key, chunk_bytes=chunk, size=len(data), whole_bytes=whole_bytes
        )
    ]


def test_elements_are_found_whatever_the_chunk_size() -> None:
    whole = _values(NASTY, b"data", 1 << 20)
    assert whole == [
        ("Element", b'{"traceID": "a]},[{\\"\\\\", "spans": [[1, {"x": "}"}]]}', 1, "$.data[0]"),
        ("Element", b'{"traceID": "b\\\\", "k": {"data": [9]}}', 1, "$.data[1]"),
        ("Element", b"[]", 1, "$.data[2]"),
        ("Rest", b'{"total": 2, "data": [], "errors": null, "data2": [1, 2]}', 1, ""),
        ("Element", b'{"id": "]"}', 2, "$[0]"),
        ("Element", b'[{"id": 2}]', 2, "$[1]"),
        ("Rest", b"[]", 2, ""),
    ]
    for element in whole:
        if element[0] == "Element":
            json.loads(element[1])  # each is a JSON value on its own
    for chunk in (1, 2, 3, 5, 7, 64):
        assert _values(NASTY, b"data", chunk) == whole, chunk


SINGLE = [
    (
        b'\xef\xbb\xbf {"total": 2, "data": [ {"traceID": "a]},[{\\"\\\\", "spans": [1]} ,[], 3 ],'
        b'"errors": null}',
        b"data",
    ),
    (b'[{"id": "]"}, [{"id": 2}] , {}]\n', None),
    (b'{"data": null, "spans": [{"spanID": "2"}]}', b"data"),
    (b'{"data": [1], "x": {"data": [2]}}', None),
    (b"[]", None),
]


@pytest.mark.parametrize(("doc", "key"), SINGLE)
def test_a_whole_document_is_split_as_the_scanner_splits_it(doc: bytes, key: bytes | None) -> None:
    """Up to ``whole_bytes`` msgspec splits the document in one pass: the same elements, and the
    same rest (re-encoded: the same JSON value)."""
    whole = _values(doc, key, 1 << 20, whole_bytes=len(doc))
    scanned = _values(doc, key, 5)
    assert [v for v in whole if v[0] == "Element"] == [v for v in scanned if v[0] == "Element"]
    assert [(v[0], json.loads(v[1]), v[2]) for v in whole if v[0] == "Rest"] == [
        (v[0], json.loads(v[1]), v[2]) for v in scanned if v[0] == "Rest"
    ]


@pytest.mark.parametrize("doc", [NASTY, b'{"data": [{"a": 1}, {"b": ', b"[1, 2] x", b'{"data": [1,, 2]}'])
def test_what_one_pass_cannot_take_goes_to_the_scanner(doc: bytes) -> None:
    """Several documents, a cut or malformed one: the scanner's values (or its error), unchanged."""
    try:
        scanned: object = _values(doc, b"data", 5)
    except TraceFormatError as exc:
        scanned = str(exc)
    try:
        whole: object = _values(doc, b"data", 1 << 20, whole_bytes=1 << 20)
    except TraceFormatError as exc:
        whole = str(exc)
    assert whole == scanned


def test_an_object_without_the_key_is_handed_over_whole() -> None:
    doc = b'{"traceID": "1", "spans": [{"spanID": "2"}], "processes": {"p1": {}}}'
    (rest,) = iter_values(io.BytesIO(doc), "f.json", key=b"data", chunk_bytes=4)
    assert isinstance(rest, Rest) and rest.data == doc and not rest.streamed


@pytest.mark.parametrize("cut", [b'{"data": [{"a": 1}, {"b": ', b'[{"a": "x', b'[{"a": 1}'])
def test_a_cut_document_names_the_file(cut: bytes) -> None:
    with pytest.raises(TraceFormatError, match="truncated JSON") as e:
        list(iter_values(io.BytesIO(cut), "cut.json", key=b"data", chunk_bytes=3))
    assert "cut.json" in str(e.value)


@pytest.fixture(scope="module")
def small_documents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_documents(tmp_path_factory.mktemp("documents"), 150, rich_resources=False)


def _report(path: Path, tmp: Path, *args: str, jobs: int = 1) -> bytes:
    """The JSON report of ``path`` copied to a fixed name (the report names its source)."""
    where = tmp / f"run-{len(list(tmp.iterdir()))}"
    where.mkdir()
    src = where / "traces.json"
    os.link(path, src)
    out = where / "report.json"
    env = dict(os.environ, **{MIN_BYTES_ENV: "1"})
    cmd = [sys.executable, "-m", "tracekit", "analyze", src.name, *args, "--jobs", str(jobs)]
    done = subprocess.run(
        [*cmd, "--format", "json", "-o", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
        cwd=where,
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return out.read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["jaeger", "zipkin"])
def test_document_same_report_as_one_trace_per_line(
    fmt: str, small_documents: dict[str, Path], tmp_path: Path
) -> None:
    """A one-line document read element by element against the same traces one per line (each line
    decoded whole), in this process and in a local pool. The Zipkin document holds its spans in the
    order they ended, so each trace's spans and the two halves of its shared spans are spread over
    the document; per line they are together."""
    lines = _report(small_documents[f"{fmt}-lines"], tmp_path)
    report = json.loads(lines)
    assert report["summary"]["traces"] == 150
    assert _report(small_documents[fmt], tmp_path) == lines
    assert _report(small_documents[fmt], tmp_path, jobs=2) == lines


def test_zipkin_halves_far_apart_are_merged_within_the_window(tmp_path: Path) -> None:
    """The client and server halves of a shared span, other traces' spans between them: merged (the
    server half gets a derived id under the client); past the window they are converted apart, with
    a warning on the trace."""
    tid = "0" * 31 + "1"
    client = {"traceId": tid, "id": "a1", "name": "get", "kind": "CLIENT", "timestamp": 1_000, "duration": 90}
    client |= {"localEndpoint": {"serviceName": "front"}}
    server = {"traceId": tid, "id": "a1", "parentId": None, "name": "get", "kind": "SERVER", "shared": True}
    server |= {"timestamp": 1_010, "duration": 70, "localEndpoint": {"serviceName": "back"}}
    others = [
        {"traceId": f"{n + 2:032x}", "id": "b1", "name": "x", "timestamp": 5_000, "duration": 1}
        for n in range(30)
    ]
    path = tmp_path / "zipkin.json"
    path.write_text(json.dumps([client, *others, server]))
    (trace,) = [t for t in read_traces(path) if t.trace_id == tid]
    server_span = next(s for s in trace.spans if s.service == "back")
    assert server_span.parent_id == "00000000000000a1" and server_span.span_id != "00000000000000a1"
    assert not trace.warnings

    late = [t for t in read_traces(path, window_spans=10) if t.trace_id == tid]
    spans = [s for t in late for s in t.spans]
    assert {s.span_id for s in spans} == {"00000000000000a1"}  # not merged: both kept their id
    assert any("not merged" in w for t in late for w in t.warnings)


def test_a_one_line_document_longer_than_the_line_cap_is_read(small_documents: dict[str, Path]) -> None:
    """The line cap protects line inputs; a one-line Jaeger or Zipkin document is read element by
    element instead, so it no longer applies (the query API writes 300 MB answers on one line)."""
    for fmt in ("jaeger", "zipkin"):
        path = small_documents[fmt]
        assert b"\n" not in path.read_bytes().rstrip(b"\n") or fmt == "zipkin"
        traces = list(read_traces(path, max_line_bytes=4096))
        assert len(traces) == 150, fmt


def test_a_bad_trace_names_the_file_and_the_element(tmp_path: Path) -> None:
    good = {"traceID": "1", "spans": [{"traceID": "1", "spanID": "2", "startTime": 10, "duration": 5}]}
    bad = {"traceID": "3", "spans": [], "processes": {"p1": {"serviceName": 7}}}
    path = tmp_path / "api.json"
    path.write_text(json.dumps({"data": [bad, good]}))
    one_line_error(run(str(path)), "api.json", "$.data[0].processes", "serviceName")
    # A Zipkin span that does not validate is dropped with a warning; with no valid span left, the
    # first one's problem is the error.
    zipkin = tmp_path / "spans.json"
    zipkin.write_text(
        json.dumps([{"traceId": "1", "id": "3", "tags": 5}, {"traceId": "1", "id": "4", "tags": 6}])
    )
    one_line_error(run(str(zipkin)), "spans.json", "$[0].tags")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_what_came_before_a_bad_element_is_analysed_with_a_warning(tmp_path: Path, jobs: str) -> None:
    """A cut-off or damaged document still shows what it holds up to the damage, as a bad line of a
    JSONL file does; the warning names the file and the element."""
    good = [
        {"traceID": f"{n}", "spans": [{"traceID": f"{n}", "spanID": "2", "startTime": 10, "duration": 5}]}
        for n in (1, 2)
    ]
    bad = {"traceID": "3", "spans": [], "processes": {"p1": {"serviceName": 7}}}
    path = tmp_path / "api.json"
    path.write_text(json.dumps({"data": [*good, bad, good[0]]}))
    result = run(str(path), "--jobs", jobs, "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["summary"]["traces"] == 2
    (warning,) = [line for line in result.stderr.splitlines() if "$.data[2]" in line]
    assert (
        "api.json" in warning and "serviceName" in warning and "rest of the document was not read" in warning
    )


MEASURE = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
print(done.stderr[-2000:], file=sys.stderr)
"""

READ = """
import sys
from tracekit.analyze.readers import documents, read_traces
documents.WHOLE_BYTES = int(sys.argv[3])
spans = sum(len(t.spans) for t in read_traces(sys.argv[1], window_spans=2_000, max_open_spans=20_000))
assert spans == int(sys.argv[2]), spans
"""


def _peak_mb(*cmd: str) -> int:
    """Peak RSS of the largest process ``cmd`` ran (its workers included), in MB."""
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, *cmd], capture_output=True, text=True, timeout=900, check=True
    )
    code, peak_mb = map(int, done.stdout.split())
    assert code == 0, done.stderr
    return peak_mb


@pytest.fixture(scope="module")
def large_documents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """About 125 MB of Jaeger and 150 MB of Zipkin document (85,000 spans each)."""
    paths = write_documents(tmp_path_factory.mktemp("large"), 8_500)
    for name in ("jaeger-lines", "zipkin-lines"):
        paths.pop(name).unlink()  # disk space: these tests read the documents only
    return paths


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["jaeger", "zipkin"])
def test_reading_a_document_holds_the_open_traces_not_the_file(
    fmt: str, large_documents: dict[str, Path]
) -> None:
    """With a window of 2,000 spans the scanner's reader holds a few thousand spans at a time: its
    peak (the interpreter included, about 60 MB measured) stays under three quarters of the file's
    size.
    Decoding the file whole needs the file's bytes and their decoded form at once: more than the
    file's size."""
    doc = large_documents[fmt]
    size = doc.stat().st_size
    peak = _peak_mb(sys.executable, "-c", READ, str(doc), "85000", "0")
    assert peak * 1e6 < 0.75 * size, (peak, size / 1e6)
    # Up to WHOLE_BYTES the document is held whole while it is split (faster, bounded by that size).
    held = _peak_mb(sys.executable, "-c", READ, str(doc), "85000", str(size))
    assert held * 1e6 > size, (held, size / 1e6)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["jaeger", "zipkin"])
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_analysing_a_document_stays_under_the_whole_document_figure(
    fmt: str, jobs: str, large_documents: dict[str, Path], tmp_path: Path
) -> None:
    """The whole analysis, in this process and in a pool: below what decoding the document whole
    took (measured on these documents: 4.7 bytes per byte of Jaeger, 3.8 of Zipkin, for a document of
    this size; the window holds all 85,000 spans here, so larger documents gain more, see
    docs/performance.md)."""
    doc = large_documents[fmt]
    size = doc.stat().st_size
    out = str(tmp_path / "r.json")
    peak = _peak_mb(sys.executable, "-m", "tracekit", "analyze", str(doc), "--jobs", jobs, "-o", out)
    bound = {"jaeger": 2.5, "zipkin": 3.2}[fmt]
    assert peak * 1e6 < bound * size, (peak, size / 1e6)

"""The partitioned analysis: the same report in this process, in a local pool, whatever the plan.

The CLI tests run the real command twice in subprocesses (``--jobs 1``: in this process; ``--jobs
2``: a local pool of two workers) and compare what a user gets: the report byte for byte, stderr
and the exit code. The library tests cut small files into many chunks and partitions and compare
with a plain streaming read (``read_traces``), the ground truth for what a trace holds.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.analyze.cli_run import one_line_error, run
from tests.analyze.truth import (
    Layout,
    anomalous_otlp_lines,
    request_trace,
    to_jaeger,
    to_otlp_lines,
    to_zipkin,
)
from tracekit.analyze.api import Analysis
from tracekit.analyze.executors import InProcess, LocalPool, WorkerCrashed
from tracekit.analyze.plan import MAX_JOBS, MIN_BYTES_ENV, Input, local_workers, usable_cpus
from tracekit.analyze.readers import read_traces
from tracekit.analyze.run import Request, execute, write_json

FAILURES = ("edge", "ingress", "service", "app", "sidecar", "db", "envoy")


def analyze(*args: str, jobs: int, tmp: Path) -> tuple[int, bytes, str]:
    """Run the CLI; return (exit code, the JSON report's bytes or b"", stderr)."""
    out = tmp / f"report-{jobs}.json"
    if out.exists():
        out.unlink()
    env = dict(os.environ, **{MIN_BYTES_ENV: "1"})
    cmd = [sys.executable, "-m", "tracekit", "analyze", *args, "--format", "json", "-o", str(out)]
    done = subprocess.run(
        [*cmd, "--jobs", str(jobs)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, out.read_bytes() if out.exists() else b"", done.stderr


def assert_same(*args: str, tmp: Path) -> dict:
    """Both runs agree; returns the report."""
    code1, out1, err1 = analyze(*args, jobs=1, tmp=tmp)
    code2, out2, err2 = analyze(*args, jobs=2, tmp=tmp)
    assert code1 == 0, err1
    assert (code2, err2) == (code1, err1)
    one, two = json.loads(out1), json.loads(out2)
    assert two["summary"] == one["summary"]
    assert {t["trace_id"]: t for t in two["traces"]} == {t["trace_id"]: t for t in one["traces"]}
    assert out2 == out1  # same order too
    return one


def write_lines(path: Path, traces: list, per_line: int = 7) -> Path:
    path.write_text(to_otlp_lines([s for b in traces for s in b.spans], per_line=per_line))
    return path


@pytest.fixture(scope="module")
def truth_traces() -> list:
    """Ground-truth requests: fan-out, clock skew on the app's node, FOLLOWS_FROM, failures."""
    out = []
    for n in range(1, 41):
        out.append(
            request_trace(
                n,
                fanout=0 if n % 3 == 0 else 2 + n % 2,
                skew_node="node-2" if n % 7 == 0 else None,
                skew_us=150_000 if n % 7 == 0 else 0,
                follows_from=n % 5 == 1,
                failure="db" if n % 11 == 0 else None,
            )
        )
    return out


@pytest.mark.slow
def test_truth_file_same_report(tmp_path: Path, truth_traces: list) -> None:
    path = write_lines(tmp_path / "truth.jsonl", truth_traces)
    report = assert_same(str(path), tmp=tmp_path)
    assert report["summary"]["traces"] == len(truth_traces)


@pytest.mark.slow
def test_failures_same_report(tmp_path: Path) -> None:
    traces = [request_trace(200 + i, failure=FAILURES[i % len(FAILURES)]) for i in range(21)]
    traces += [request_trace(300 + i) for i in range(9)]
    path = write_lines(tmp_path / "failures.jsonl", traces, per_line=4)
    report = assert_same(str(path), tmp=tmp_path)
    assert report["summary"]["error_traces"] == 21
    assert len(report["summary"]["failures"]["by_reason"]) >= 5


@pytest.mark.slow
def test_bad_lines_same_warnings(tmp_path: Path, truth_traces: list) -> None:
    lines = to_otlp_lines([s for b in truth_traces for s in b.spans], per_line=5).splitlines()
    lines.insert(3, "garbage that is not JSON")
    lines.insert(9, lines[8][: len(lines[8]) // 2])  # a truncated line
    lines.append('{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz", "spanId": "1"}]}]}]}')
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert_same(str(path), tmp=tmp_path)
    # The cap on warnings picks the same first ones and counts the same rest.
    assert_same(str(path), "--warnings", "2", tmp=tmp_path)
    code, _, err = analyze(str(path), "--warnings", "2", jobs=2, tmp=tmp_path)
    assert code == 0 and "more warning(s) not shown" in err, err


@pytest.mark.slow
def test_span_with_a_bad_attribute_value_same_report(tmp_path: Path, truth_traces: list) -> None:
    """A span whose attribute list does not validate keeps its span (the bad attribute is dropped
    with a warning on the trace), wherever it is analysed."""
    lines = to_otlp_lines([s for b in truth_traces for s in b.spans], per_line=5).splitlines()
    for n, i in enumerate((2, 6)):
        doc = json.loads(lines[i])
        span = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
        span["traceId"] = f"{n + 1:032x}"
        span["attributes"] = [{"key": "n", "value": {"intValue": "not a number"}}]
        lines[i] = json.dumps(doc)
    path = tmp_path / "bad-attribute.jsonl"
    path.write_text("\n".join(lines) + "\n")
    report = assert_same(str(path), tmp=tmp_path)
    _, _, err = analyze(str(path), jobs=2, tmp=tmp_path)
    assert (
        err.count(
            "field attributes[0].value.intValue: Expected `int | null`, got `str`; attribute 'n' dropped"
        )
        == 2
    )
    assert report["summary"]["spans"] == sum(len(b.spans) for b in truth_traces)  # none dropped


@pytest.mark.slow
def test_many_bad_lines_same_capped_warnings(tmp_path: Path, truth_traces: list) -> None:
    """More bad lines than the reader reports one by one (50 per file): same shown, same counts."""
    lines = to_otlp_lines([s for b in truth_traces for s in b.spans], per_line=2).splitlines()
    for i in range(len(lines) - 1, 0, -3):
        lines.insert(i, f"bad line {i}")
    path = tmp_path / "many-bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert_same(str(path), "--warnings", "100", tmp=tmp_path)
    code, _, err = analyze(str(path), "--warnings", "100", jobs=2, tmp=tmp_path)
    assert code == 0 and "more warnings not shown" in err, err


@pytest.mark.slow
def test_nothing_usable_exits_2_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "garbage.jsonl"
    path.write_text('{"resourceSpans": 3}\nnot json either\n')
    code1, out1, err1 = analyze(str(path), jobs=1, tmp=tmp_path)
    code2, out2, err2 = analyze(str(path), jobs=2, tmp=tmp_path)
    assert code1 == code2 == 2
    assert err2 == err1 and len(err2.strip().splitlines()) == 1, err2
    assert "garbage.jsonl:1" in err2
    assert out1 == out2 == b""


@pytest.mark.slow
def test_gz_and_several_files(tmp_path: Path, truth_traces: list) -> None:
    plain = write_lines(tmp_path / "a.jsonl", truth_traces[:20])
    packed = tmp_path / "b.jsonl.gz"
    packed.write_bytes(gzip.compress(write_lines(tmp_path / "b.jsonl", truth_traces[20:]).read_bytes()))
    assert_same(str(packed), tmp=tmp_path)
    unusable = tmp_path / "empty.json"
    unusable.write_text("")
    # Several files, one of them unusable: a warning, the others analysed.
    report = assert_same(str(plain), str(unusable), str(packed), tmp=tmp_path)
    assert report["summary"]["traces"] == len(truth_traces)


@pytest.mark.slow
def test_jaeger_and_zipkin_documents(tmp_path: Path, truth_traces: list) -> None:
    """Single documents are one chunk each; their traces are partitioned like a JSONL file's."""
    jaeger = tmp_path / "jaeger.json"
    jaeger.write_text(json.dumps(to_jaeger([b.spans for b in truth_traces])))
    zipkin = tmp_path / "zipkin.json"
    zipkin.write_text(json.dumps(to_zipkin([s for b in truth_traces[:10] for s in b.spans])))
    report = assert_same(str(jaeger), str(zipkin), tmp=tmp_path)
    assert report["summary"]["traces"] == len(truth_traces) + 10


@pytest.mark.slow
def test_trace_id_filter(tmp_path: Path, truth_traces: list) -> None:
    path = write_lines(tmp_path / "truth.jsonl", truth_traces)
    report = assert_same(str(path), "--trace-id", "7", "--trace-id", "0x0C", tmp=tmp_path)
    assert report["summary"]["traces"] == 2
    code1, _, err1 = analyze(str(path), "--trace-id", "abcdef", jobs=1, tmp=tmp_path)
    code2, _, err2 = analyze(str(path), "--trace-id", "abcdef", jobs=2, tmp=tmp_path)
    assert code1 == code2 == 2 and err1 == err2


def _plain(path: Path, **kw: object) -> list[dict]:
    """Ground truth: a plain streaming read, analysed trace by trace."""
    analysis = Analysis()
    return [r for r in map(analysis.analyse, read_traces(path, **kw)) if r is not None]


def _partitioned(paths: list[Path], tmp: Path, executor: object = None, **plan: int) -> tuple[bytes, object]:
    storage = tmp / f"storage-{len(list(tmp.iterdir()))}"
    storage.mkdir()
    request = Request(
        [str(p) for p in paths],
        chunk_bytes=plan.get("chunk"),
        partitions=plan.get("partitions"),
        warning_limit=plan.get("warning_limit", 10),
    )
    outcome = execute(request, executor or InProcess(), str(storage))
    out = io.BytesIO()
    write_json(out, outcome)
    return out.getvalue(), outcome


@pytest.mark.parametrize(("chunk", "partitions"), [(None, 1), (None, 7), (700, 1), (1500, 5), (97, 3)])
def test_any_chunking_and_partitioning_same_report(
    tmp_path: Path, truth_traces: list, chunk: int | None, partitions: int
) -> None:
    """Byte ranges that cut lines anywhere, any number of partitions: the report of one chunk and one
    partition, byte for byte; and its traces are the plain reader's, in the order of their first span."""
    path = write_lines(tmp_path / "truth.jsonl", truth_traces, per_line=3)
    reference, _ = _partitioned([path], tmp_path, partitions=1)
    report, outcome = _partitioned([path], tmp_path, chunk=chunk, partitions=partitions)
    assert report == reference
    if chunk:
        assert outcome.chunks == -(-path.stat().st_size // chunk)  # type: ignore[attr-defined]
    traces = json.loads(report)["traces"]
    plain = {r["trace_id"]: json.loads(msgspec_json(r)) for r in _plain(path)}
    assert {t["trace_id"]: t for t in traces} == plain
    first_seen = list(dict.fromkeys(s.trace_id for b in truth_traces for s in b.spans))
    assert [t["trace_id"] for t in traces] == first_seen


def msgspec_json(report: dict) -> bytes:
    import msgspec

    return msgspec.json.encode(report)


def test_traces_are_gathered_whole(tmp_path: Path, truth_traces: list) -> None:
    """Spans of a trace far apart in the file (past the streaming reader's window) still make one
    trace: a partition holds every span of its traces."""
    spans = [s for b in truth_traces for s in b.spans]
    spans = spans[::2] + spans[1::2]
    path = tmp_path / "interleaved.jsonl"
    path.write_text(to_otlp_lines(spans, per_line=3))
    assert any(
        "arrived after it was emitted" in w for r in _plain(path, window_spans=20) for w in r["warnings"]
    )
    report, _ = _partitioned([path], tmp_path, chunk=500, partitions=3)
    traces = json.loads(report)["traces"]
    assert {t["trace_id"]: t["span_count"] for t in traces} == {
        b.spans[0].trace_id: len(b.spans) for b in truth_traces
    }
    assert not any("arrived after" in w for t in traces for w in t["warnings"])


def test_warnings_name_the_global_line(tmp_path: Path, truth_traces: list) -> None:
    """A bad line in a later chunk is named by its line in the file, not in the chunk."""
    lines = to_otlp_lines([s for b in truth_traces for s in b.spans], per_line=3).splitlines()
    lines.insert(40, "not json at all")
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    _, outcome = _partitioned([path], tmp_path, chunk=600, partitions=2)
    assert outcome.chunks > 10  # type: ignore[attr-defined]
    plain: list[str] = []
    list(read_traces(path, on_warning=plain.append))
    assert len(plain) == 1 and plain[0].startswith(f"{path}:41: ")
    assert [w for w in outcome.warnings if w.startswith(str(path))] == plain  # type: ignore[attr-defined]


def test_local_pool_same_report_as_in_process(tmp_path: Path, truth_traces: list) -> None:
    path = write_lines(tmp_path / "truth.jsonl", truth_traces, per_line=3)
    reference, _ = _partitioned([path], tmp_path)
    pool = LocalPool(2)
    try:
        report, outcome = _partitioned([path], tmp_path, pool, chunk=1000, partitions=4)
    finally:
        pool.close()
    assert report == reference
    assert outcome.partitions == 4  # type: ignore[attr-defined]


def _exit_hard(task: int) -> int:
    os._exit(3)


def test_crashed_worker_is_reported_not_awaited() -> None:
    pool = LocalPool(2)
    with pytest.raises(WorkerCrashed, match="stopped without a result"):
        pool.map(_exit_hard, [1, 2])


def test_local_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    small = [Input(0, "t.jsonl", "t.jsonl", "otlp", True, 999, False)]
    monkeypatch.setenv(MIN_BYTES_ENV, "1000")
    assert local_workers("auto", small) == 1  # small input: this process
    assert local_workers("3", small) == 3
    gz = [Input(0, "t.jsonl.gz", "t.jsonl.gz", "otlp", True, 200, True)]
    assert local_workers("auto", gz) == min(usable_cpus(), 8)  # counted at 8 times its size
    monkeypatch.setenv(MIN_BYTES_ENV, "1")
    assert local_workers("auto", small) == min(usable_cpus(), 8)


def test_bad_jobs_value_is_one_line(tmp_path: Path, truth_traces: list) -> None:
    path = write_lines(tmp_path / "truth.jsonl", truth_traces[:3])
    code, _, err = analyze(str(path), jobs=0, tmp=tmp_path)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--jobs" in err, err


def run_cli(*args: str, jobs: int) -> tuple[int, str, str]:
    """Run the CLI with output on stdout (not a terminal); return (exit code, stdout, stderr)."""
    env = dict(os.environ, **{MIN_BYTES_ENV: "1"})
    cmd = [sys.executable, "-m", "tracekit", "analyze", *args, "--jobs", str(jobs)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout, done.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        (),  # text: the slowest trace and the first failed ones
        ("--slowest", "4"),
        ("--format", "json", "--slowest", "5"),
    ],
    ids=["text", "text-slowest", "json-slowest"],
)
def test_text_and_slowest_same_output(tmp_path: Path, args: tuple[str, ...]) -> None:
    # Failed traces all over the file; nine app durations, so many traces tie (read order decides).
    traces = [
        request_trace(
            n,
            Layout(app=(1000 + 1000 * (n * 37 % 9), 1000)),
            failure=FAILURES[n % len(FAILURES)] if n % 3 == 0 else None,
        )
        for n in range(1, 61)
    ]
    path = write_lines(tmp_path / "t.jsonl", traces)
    one = run_cli(str(path), *args, jobs=1)
    two = run_cli(str(path), *args, jobs=2)
    assert one[0] == 0, one[2]
    assert two == one
    # ... and it is the selection the library makes in one process (ties broken by read order).
    slowest = int(args[args.index("--slowest") + 1]) if "--slowest" in args else 1
    failed = 0 if "json" in args else 3
    analysis = Analysis(slowest=slowest, failed=failed)
    for trace in read_traces(path):
        analysis.add(trace)
    expected = [r["trace_id"] for r in analysis.kept()]
    if "json" in args:
        shown = [t["trace_id"] for t in json.loads(one[1])["traces"]]
    else:
        shown = re.findall(r"^Trace ([0-9a-f]{32}) ", one[1], flags=re.M)
    assert shown == expected
    assert len(expected) == slowest + failed


#: Runs the partitioned analysis with a pool of two on argv[1] in a fresh (single-threaded)
#: interpreter: prints the start method on the first line, then the report.
_POOL_SCRIPT = """
import io, sys, tempfile
from tracekit.analyze.executors import LocalPool, _context
from tracekit.analyze.run import Request, execute, write_json
if __name__ == "__main__":
    out = io.BytesIO()
    pool = LocalPool(2)
    with tempfile.TemporaryDirectory() as storage:
        write_json(out, execute(Request([sys.argv[1]]), pool, storage))
    pool.close()
    sys.stdout.buffer.write(_context().get_start_method().encode() + b"\\n" + out.getvalue())
"""


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_forked_and_spawned_workers_write_the_same_report(
    tmp_path: Path, truth_traces: list, method: str
) -> None:
    """Workers are forked while the caller runs one thread (a fresh interpreter here) and spawned
    otherwise (a running thread in this process); both give the in-process report, byte for byte."""
    from tracekit.analyze.executors import _context

    path = write_lines(tmp_path / "truth.jsonl", truth_traces)
    if method == "fork":
        done = subprocess.run(
            [sys.executable, "-c", _POOL_SCRIPT, str(path)], capture_output=True, timeout=120, check=True
        )
        used, _, report = done.stdout.partition(b"\n")
        assert used.decode() == ("fork" if sys.platform == "linux" else "spawn")
    else:
        stop = threading.Event()
        thread = threading.Thread(target=stop.wait)
        thread.start()
        pool = LocalPool(2)
        try:
            assert _context().get_start_method() == "spawn"
            report, _ = _partitioned([path], tmp_path, pool, partitions=2)
        finally:
            pool.close()
            stop.set()
            thread.join()
    reference, _ = _partitioned([path], tmp_path)
    assert report == reference


def test_jobs_above_the_cap_is_refused_before_any_worker_starts(otlp_file: Path, monkeypatch) -> None:
    # `--jobs 100000` used to spawn 100,000 worker processes (load average in the hundreds).
    monkeypatch.setenv("TRACEKIT_PARALLEL_MIN_BYTES", "1")
    one_line_error(run(str(otlp_file), "--jobs", str(MAX_JOBS + 1), "--format", "json"), "--jobs", "at most")


@pytest.mark.parametrize("fmt", ["html", "jaeger", "json"])
@pytest.mark.parametrize("jobs", ["0", "abc", "-3", "AUTO"])
def test_bad_jobs_value_is_an_error_for_every_format(otlp_file: Path, fmt: str, jobs: str) -> None:
    # HTML and Jaeger output never use workers, and `--jobs abc --format html` used to exit 0.
    one_line_error(run(str(otlp_file), "--jobs", jobs, "--format", fmt), "--jobs")


def test_anomalous_input_jobs_2_is_byte_identical(tmp_path: Path, otlp_file: Path, monkeypatch) -> None:
    monkeypatch.setenv("TRACEKIT_PARALLEL_MIN_BYTES", "1")
    path = anomalous_otlp_lines(tmp_path / "anomalous.jsonl")
    for args in ([str(path)], [str(otlp_file), str(path), str(path)]):
        one = run(*args, "--format", "json", "--jobs", "1", "--warnings", "100")
        two = run(*args, "--format", "json", "--jobs", "2", "--warnings", "100")
        assert one.exit_code == two.exit_code == 0, (one.stderr, two.stderr)
        assert one.stdout_bytes == two.stdout_bytes
        assert one.stderr == two.stderr


@pytest.mark.parametrize("table", [3, 7, 64])
def test_small_dict_tables_same_report(
    tmp_path: Path, truth_traces: list, table: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream's dict table starts again when full (memory stays bounded); a group's spans always
    refer to the table of the frame they are written in, whatever the table size."""
    from tracekit.analyze import partitions

    otlp = write_lines(tmp_path / "truth.jsonl", truth_traces, per_line=3)
    jaeger = tmp_path / "jaeger.json"
    jaeger.write_text(json.dumps(to_jaeger([b.spans for b in truth_traces])))
    reference, _ = _partitioned([otlp, jaeger], tmp_path, partitions=2)
    monkeypatch.setattr(partitions, "MAX_TABLE", table)
    report, _ = _partitioned([otlp, jaeger], tmp_path, partitions=2)
    assert report == reference


def test_inputs_and_storage_as_fsspec_urls(tmp_path: Path, truth_traces: list) -> None:
    """Inputs named by URL and partitions in an fsspec filesystem (the in-memory one here; s3:// and
    gs:// go through the same calls) give the report of local paths, and the storage is removed."""
    fsspec = pytest.importorskip("fsspec")
    from tracekit.analyze.mapreduce import remove_storage

    path = write_lines(tmp_path / "truth.jsonl", truth_traces, per_line=3)
    reference, _ = _partitioned([path], tmp_path)
    storage = "memory://tracekit-test/run"
    request = Request([f"file://{path}"], chunk_bytes=900, partitions=3)
    outcome = execute(request, InProcess(), storage)
    out = io.BytesIO()
    write_json(out, outcome)
    # The same report; each trace's source names the input as given (the URL).
    assert out.getvalue().count(f'"source":"file://{path}"'.encode()) == len(truth_traces)
    assert out.getvalue().replace(b'"source":"file://', b'"source":"') == reference
    memory = fsspec.filesystem("memory")
    assert memory.ls("/tracekit-test/run")  # streams and results went there
    remove_storage(storage)
    assert not memory.exists("/tracekit-test/run")


def _jaeger_document_with_flaws(truth_traces: list, stop_at: int | None) -> dict:
    """The truth traces as one Jaeger document, with what other writers get wrong: ids that are
    not hex, a process that is missing, a trace all of whose spans are dropped, and (``stop_at``)
    a trace object the reader cannot take, which ends the reading."""
    doc = to_jaeger([b.spans for b in truth_traces])
    data = doc["data"]
    data[3]["spans"][0]["spanID"] = "span-one"
    data[5]["spans"][1]["processID"] = "nowhere"
    for span in data[8]["spans"]:
        span["startTime"] = -1
    if stop_at is not None:
        data.insert(stop_at, {"traceID": "ab" * 16, "spans": "not a list"})
    return doc


@pytest.mark.parametrize("stop_at", [None, 0, 17])
def test_a_jaeger_document_shared_by_several_map_tasks_same_report(
    tmp_path: Path, truth_traces: list, stop_at: int | None
) -> None:
    """Up to one map task per worker reads a Jaeger document, each converting every n-th trace: the
    report, the warnings (in order) and the errors are those of one task reading it all, whether
    the reading goes to the end, stops on the first trace (nothing usable: the error) or in the
    middle (what came before, with a warning)."""
    path = tmp_path / "jaeger.json"
    path.write_text(json.dumps(_jaeger_document_with_flaws(truth_traces, stop_at)))

    def run_with(workers: int) -> tuple[bytes, list[str], list[str], int]:
        executor = InProcess()
        executor.workers = workers  # type: ignore[misc]  # a plan for that many, run here
        report, outcome = _partitioned([path], tmp_path, executor, chunk=512, partitions=3, warning_limit=100)
        return report, outcome.warnings, outcome.errors, outcome.chunks  # type: ignore[attr-defined]

    reference = run_with(1)
    assert reference[3] == 1
    for workers in (2, 3):
        report, warnings, errors, chunks = run_with(workers)
        assert chunks == workers
        assert (report, warnings, errors) == reference[:3]
    report, warnings, errors, _ = reference
    if stop_at == 0:
        assert len(errors) == 1 and "$.data[0]" in errors[0] and not json.loads(report)["traces"]
    else:
        assert not errors
        assert any("not hex" in w for w in warnings) and any("nowhere" in w for w in warnings)
        stopped = [w for w in warnings if "the rest of the document was not read" in w]
        assert len(stopped) == (stop_at is not None)
        traces = json.loads(report)["traces"]
        assert len(traces) == (stop_at or len(truth_traces)) - 1  # the dropped trace


def test_a_shared_jaeger_document_with_no_valid_span_is_the_first_traces_error(
    tmp_path: Path, truth_traces: list
) -> None:
    """Traces none of whose spans validates are noted by the part that converts them; with no
    usable span in the whole document the error names the first of them, whatever the parts."""
    doc = to_jaeger([b.spans for b in truth_traces[:9]])
    for trace in doc["data"][2:]:
        for span in trace["spans"]:
            span["duration"] = "long"
    # The first trace has no spans (nothing to note): the first broken one is the second element,
    # which the second of two parts converts.
    broken = {"data": [{"traceID": "ab" * 16, "spans": []}, *doc["data"][2:]]}
    path = tmp_path / "jaeger.json"
    for document, error in ((doc, None), (broken, "$.data[1].spans[0].duration")):
        path.write_text(json.dumps(document))
        results = []
        for workers in (1, 2, 3):
            executor = InProcess()
            executor.workers = workers  # type: ignore[misc]
            report, outcome = _partitioned([path], tmp_path, executor, chunk=256, partitions=2)
            results.append((report, outcome.warnings, outcome.errors))  # type: ignore[attr-defined]
        assert results[1] == results[0] and results[2] == results[0]
        errors = results[0][2]
        if error is None:
            assert not errors and len(json.loads(results[0][0])["traces"]) == 2
        else:
            assert len(errors) == 1 and error in errors[0], errors

"""``tracekit analyze --jobs N``: worker processes give the same report as one process.

Every test runs the real CLI twice in subprocesses (``--jobs 1`` and ``--jobs 2``, with
``TRACEKIT_PARALLEL_MIN_BYTES=1`` so small files qualify) and compares what a user gets: the summary,
the trace objects (as dicts keyed by trace id, and also byte for byte: the workers' traces are merged
back into read order), stderr and the exit code.
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
from tracekit.analyze import parallel
from tracekit.analyze.api import Analysis
from tracekit.analyze.parallel import MAX_JOBS, MIN_BYTES_ENV, choose_jobs, usable_cpus
from tracekit.analyze.readers import read_traces
from tracekit.analyze.renderers.json import stream_json

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
    with a warning on the trace). Workers that do not own the trace never look at its attributes,
    so nothing may depend on them: same spans, same counts, same warnings as one process."""
    lines = to_otlp_lines([s for b in truth_traces for s in b.spans], per_line=5).splitlines()
    for n, i in enumerate((2, 6)):  # one span in a trace of each shard (ids ending in 1 and 2)
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
    """Single documents: the shard filter sits in the assembler for these formats."""
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


def test_shards_complete_traces_like_one_reader(tmp_path: Path, truth_traces: list) -> None:
    """The shards' traces are exactly the plain reader's, judged complete at the same point.

    A tiny window makes the completeness rule matter: traces spread over lines, late parts.
    """
    spans = [s for b in truth_traces for s in b.spans]
    spans = spans[::2] + spans[1::2]  # every trace gets split far apart: late parts
    path = tmp_path / "interleaved.jsonl"
    path.write_text(to_otlp_lines(spans, per_line=3))
    plain = list(read_traces(path, window_spans=20))
    shards = [t for i in range(3) for t in read_traces(path, window_spans=20, shard=(i, 3))]
    shards.sort(key=lambda t: t.order)
    assert [(t.trace_id, t.spans, t.warnings) for t in shards] == [
        (t.trace_id, t.spans, t.warnings) for t in plain
    ]
    assert any("arrived after it was emitted" in w for t in plain for w in t.warnings)


def test_choose_jobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("{}\n")
    monkeypatch.setenv(MIN_BYTES_ENV, "1000")
    assert choose_jobs("auto", [str(path)]) == 1  # small input: one process
    assert choose_jobs("3", [str(path)]) == 3
    assert choose_jobs("4", ["-"]) == 1  # stdin cannot be read by several workers
    monkeypatch.setenv(MIN_BYTES_ENV, "1")
    assert choose_jobs("auto", [str(path)]) == min(usable_cpus(), 8)


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


#: Runs the parallel path on argv[1] in a fresh (single-threaded) interpreter: prints the start
#: method on the first line, then the report.
_PARALLEL_SCRIPT = """
import io, sys
from tracekit.analyze import parallel
if __name__ == "__main__":
    out = io.BytesIO()
    with parallel.work_directory(None) as work_dir:
        parallel.write_json(out, parallel.analyze_parallel([sys.argv[1]], 2, work_dir))
    sys.stdout.buffer.write(parallel._context().get_start_method().encode() + b"\\n" + out.getvalue())
"""


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_forked_and_spawned_workers_write_the_same_report(
    tmp_path: Path, truth_traces: list, method: str
) -> None:
    """Workers are forked while the parent runs one thread (a fresh interpreter here) and spawned
    otherwise (a running thread in this process); both give the one-process report, byte for byte."""
    path = write_lines(tmp_path / "truth.jsonl", truth_traces)
    if method == "fork":
        done = subprocess.run(
            [sys.executable, "-c", _PARALLEL_SCRIPT, str(path)], capture_output=True, timeout=120, check=True
        )
        used, _, report = done.stdout.partition(b"\n")
        assert used.decode() == ("fork" if sys.platform == "linux" else "spawn")
    else:
        stop = threading.Event()
        thread = threading.Thread(target=stop.wait)
        thread.start()
        try:
            assert parallel._context().get_start_method() == "spawn"
            out = io.BytesIO()
            with parallel.work_directory(None) as work_dir:
                result = parallel.analyze_parallel([str(path)], 2, work_dir)
                parallel.write_json(out, result)
        finally:
            stop.set()
            thread.join()
        report = out.getvalue()
        assert all(shard.traces_written for shard in result.shards)  # both workers had traces
    analysis = Analysis()
    single = io.BytesIO()
    stream_json(single, (r for r in map(analysis.analyse, read_traces(path)) if r), analysis.summary)
    assert report == single.getvalue()


def test_worker_error_is_its_one_line(tmp_path: Path, truth_traces: list) -> None:
    """A worker that fails reports its own one line through the parent (not a hang, not a traceback)."""
    path = write_lines(tmp_path / "truth.jsonl", truth_traces[:5])
    with (
        parallel.work_directory(None) as work_dir,
        pytest.raises(parallel.WorkerCrashed, match=r"worker \d: .*missing\.yaml"),
    ):
        parallel.analyze_parallel([str(path)], 2, work_dir, rules_path=str(tmp_path / "missing.yaml"))


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

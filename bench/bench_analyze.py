"""``tracekit analyze --format json`` on a million spans, side by side with a plain decode of the file.

The input is 1,000,000 spans (100,000 traces of 10 spans) as OTLP JSON lines, spans of a trace spread
over several lines as a Collector's file exporter writes them (``bench/tracegen.py``, cached in the
temp dir). The CLI runs twice: with the default ``--jobs auto`` (worker processes, one per core up to
8, for a file this size) and with ``--jobs 1`` (one process). Printed for each: analyze spans/s, the
analyze/decode time ratio (same file, same JSON library: msgspec), the peak RSS of the largest
process (the CLI or one of its workers), wall seconds; then the speed-up and whether both reports
are byte-identical. Targets (docs/performance.md): >= 500,000 spans/s, ratio <= 3, RSS < 1 GB. The machine is
shared, so CPU seconds are printed beside wall seconds, and the decode is timed before and after
the analysis (the faster run counts).

Last, the floor: the analyzer's own typed decode of the file plus msgspec encoding the report's
traces. That is what any analyzer written in Python must spend per span with this input and this
output, before analysing anything, so it bounds the spans/s one core can reach.

``python -m bench analyze`` runs it; ``TRACEKIT_BENCH_TRACES`` shrinks the input for a quick look.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from bench.tracegen import cached_otlp_jsonl
from tracekit.analyze.plan import Input, local_workers

SPANS_PER_TRACE = 10
GOAL_SPANS_PER_S = 500_000
GOAL_RATIO = 3.0
GOAL_RSS_MB = 1024


def decode_file(path: Path) -> tuple[float, float, int]:
    """Plain msgspec decode of every line: (wall s, cpu s, lines)."""
    decoder = msgspec.json.Decoder()
    wall = time.perf_counter()
    cpu = time.process_time()
    lines = 0
    with open(path, "rb") as f:
        for line in f:
            decoder.decode(line)
            lines += 1
    return time.perf_counter() - wall, time.process_time() - cpu, lines


def typed_decode_file(path: Path) -> float:
    """CPU seconds of the analyzer's own typed decode of every line (``readers.otlp.decode``): msgspec
    structs for just the fields it reads. No reader can do less than this per span."""
    from tracekit.analyze.readers.otlp import decode

    cpu = time.process_time()
    with open(path, "rb") as f:
        for line in f:
            decode(line)
    return time.process_time() - cpu


def encode_traces(traces: list[object]) -> float:
    """CPU seconds msgspec takes to encode the report's trace objects (the JSON contract's bytes):
    what writing the output costs, whatever computed it."""
    encoder = msgspec.json.Encoder()
    buf = bytearray()
    cpu = time.process_time()
    for trace in traces:
        encoder.encode_into(trace, buf, -1)
        if len(buf) > 1 << 24:
            buf.clear()
    return time.process_time() - cpu


#: Runs a command and prints its exit code, CPU seconds and peak RSS (KiB) as JSON. In a fresh process,
#: RUSAGE_CHILDREN covers that one run only, and its peak RSS is the largest of the CLI and its workers
#: (Linux counts waited-for grandchildren).
_MEASURE = (
    "import json, resource, subprocess, sys\n"
    "done = subprocess.run(sys.argv[1:], stderr=subprocess.PIPE, text=True)\n"
    "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(json.dumps([done.returncode, u.ru_utime + u.ru_stime, u.ru_maxrss, done.stderr[-500:]]))\n"
)


def analyze_file(path: Path, out: Path, jobs: str) -> tuple[float, float, float]:
    """Run the CLI in a fresh subprocess: (wall s, cpu s of it and its workers, peak RSS MB)."""
    cmd = [sys.executable, "-m", "tracekit", "analyze", str(path), "--format", "json", "-o", str(out)]
    if jobs != "auto":
        cmd += ["--jobs", jobs]
    return measure(cmd)


def measure(cmd: list[str]) -> tuple[float, float, float]:
    """Run ``cmd`` in a fresh subprocess: (wall s, cpu s of it and its children, peak RSS MB)."""
    wall = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - wall
    if done.returncode != 0:
        raise SystemExit(f"measuring failed: {done.stderr.strip()[-500:]}")
    code, cpu, rss_kb, stderr = json.loads(done.stdout)
    if code != 0:
        raise SystemExit(f"{' '.join(cmd[2:5])} failed ({code}): {stderr.strip()}")
    return elapsed, cpu, rss_kb / 1024


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def main() -> None:
    n_traces = int(os.environ.get("TRACEKIT_BENCH_TRACES", "100000"))
    path = cached_otlp_jsonl(n_traces, SPANS_PER_TRACE)
    spans = n_traces * SPANS_PER_TRACE
    size_mb = path.stat().st_size / 1e6
    jobs_auto = local_workers(
        "auto", [Input(0, str(path), str(path), "otlp", True, path.stat().st_size, False)]
    )
    print(f"input: {path} ({size_mb:,.0f} MB, {spans:,} spans, {n_traces:,} traces)")
    print(f"cpu count {os.cpu_count()}, --jobs auto -> {jobs_auto} process(es)")
    d1_wall, d1_cpu, lines = decode_file(path)
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for jobs in ("auto", "1"):
            out = Path(tmp) / f"report-{jobs}.json"
            runs[jobs] = (*analyze_file(path, out, jobs), out.stat().st_size / 1e6, digest(out))
        with open(Path(tmp) / "report-auto.json", "rb") as f:
            report = msgspec.json.decode(f.read())
    d2_wall, d2_cpu, _ = decode_file(path)
    typed_cpu = min(typed_decode_file(path), typed_decode_file(path))
    encode_cpu = encode_traces(report["traces"])
    d_wall, d_cpu = min(d1_wall, d2_wall), min(d1_cpu, d2_cpu)
    summary = report["summary"]
    assert summary["spans"] == spans, (summary["spans"], spans)
    print(f"decode (msgspec, {lines:,} lines): {d_wall:.2f} s wall, {d_cpu:.2f} s cpu")
    for jobs, label in (("auto", f"--jobs auto ({jobs_auto})"), ("1", "--jobs 1")):
        a_wall, a_cpu, rss_mb, out_mb, _ = runs[jobs]
        print(f"analyze --format json {label}: {a_wall:.2f} s wall, {a_cpu:.2f} s cpu, {out_mb:,.0f} MB out")
        print(
            f"  spans/s:        {spans / a_wall:,.0f} (wall)  {spans / a_cpu:,.0f} (cpu)"
            f"   goal >= {GOAL_SPANS_PER_S:,}"
        )
        ratios = f"{a_wall / d_wall:.2f} (wall)  {a_cpu / d_cpu:.2f} (cpu)"
        print(f"  analyze/decode: {ratios}   goal <= {GOAL_RATIO}")
        print(f"  peak RSS:       {rss_mb:,.0f} MB (largest process)   goal < {GOAL_RSS_MB} MB")
        print(f"  wall seconds:   {a_wall:.2f}")
    floor = (typed_cpu + encode_cpu) / spans
    print(
        f"floor on one core: typed decode {typed_cpu / spans * 1e6:.2f} us/span + encoding the report"
        f" {encode_cpu / spans * 1e6:.2f} us/span = {floor * 1e6:.2f} us/span, so at most"
        f" {1 / floor:,.0f} spans/s before any analysis"
    )
    print(f"speed-up (wall): {runs['1'][0] / runs['auto'][0]:.2f}x")
    print(f"reports identical: {'yes' if runs['auto'][4] == runs['1'][4] else 'NO'}")
    print(
        f"traces {summary['traces']:,}, failed {summary['error_traces']:,}, layers: "
        + ", ".join(f"{k} {v['share']:.1%}" for k, v in summary["layers"].items())
    )


if __name__ == "__main__":
    main()

"""``tracekit analyze --format json`` on a million spans, side by side with a plain decode of the file.

The input is 1,000,000 spans (100,000 traces of 10 spans) as OTLP JSON lines, spans of a trace spread
over several lines as a Collector's file exporter writes them (``bench/tracegen.py``, cached in the
temp dir). Printed: analyze spans/s, the analyze/decode time ratio (same file, same JSON library:
msgspec), the analyzer's peak RSS, and wall seconds. Goals (issue 3): >= 500,000 spans/s, ratio <= 3,
RSS < 1 GB. The machine is shared, so CPU seconds are printed beside wall seconds, and the decode is
timed before and after the analysis (the faster run counts).

``python -m bench analyze`` runs it; ``TRACEKIT_BENCH_TRACES`` shrinks the input for a quick look.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from bench.tracegen import cached_otlp_jsonl

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


def analyze_file(path: Path, out: Path) -> tuple[float, float, float]:
    """Run the CLI in a subprocess: (wall s, cpu s, peak RSS MB of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    cmd = [sys.executable, "-m", "tracekit", "analyze", str(path), "--format", "json", "-o", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - wall
    if done.returncode != 0:
        raise SystemExit(f"analyze failed ({done.returncode}): {done.stderr.strip()[:500]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu, after.ru_maxrss / 1024


def main() -> None:
    n_traces = int(os.environ.get("TRACEKIT_BENCH_TRACES", "100000"))
    path = cached_otlp_jsonl(n_traces, SPANS_PER_TRACE)
    spans = n_traces * SPANS_PER_TRACE
    size_mb = path.stat().st_size / 1e6
    print(f"input: {path} ({size_mb:,.0f} MB, {spans:,} spans, {n_traces:,} traces)")
    d1_wall, d1_cpu, lines = decode_file(path)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        a_wall, a_cpu, rss_mb = analyze_file(path, out)
        out_mb = out.stat().st_size / 1e6
        with open(out, "rb") as f:
            report = msgspec.json.decode(f.read())
    d2_wall, d2_cpu, _ = decode_file(path)
    d_wall, d_cpu = min(d1_wall, d2_wall), min(d1_cpu, d2_cpu)
    summary = report["summary"]
    assert summary["spans"] == spans, (summary["spans"], spans)
    rate = spans / a_wall
    rate_cpu = spans / a_cpu
    ratio = a_wall / d_wall
    ratio_cpu = a_cpu / d_cpu
    print(f"decode (msgspec, {lines:,} lines): {d_wall:.2f} s wall, {d_cpu:.2f} s cpu")
    print(f"analyze --format json: {a_wall:.2f} s wall, {a_cpu:.2f} s cpu, report {out_mb:,.0f} MB")
    print(f"spans/s:        {rate:,.0f} (wall)  {rate_cpu:,.0f} (cpu)   goal >= {GOAL_SPANS_PER_S:,}")
    print(f"analyze/decode: {ratio:.2f} (wall)  {ratio_cpu:.2f} (cpu)   goal <= {GOAL_RATIO}")
    print(f"peak RSS:       {rss_mb:,.0f} MB   goal < {GOAL_RSS_MB} MB")
    print(f"wall seconds:   {a_wall:.2f}")
    print(
        f"traces {summary['traces']:,}, failed {summary['error_traces']:,}, layers: "
        + ", ".join(f"{k} {v['share']:.1%}" for k, v in summary["layers"].items())
    )


if __name__ == "__main__":
    main()

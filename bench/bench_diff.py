"""``tracekit diff`` of two million-span captures, side by side with ``tracekit analyze`` of each.

The inputs are two files of 1,000,000 spans (100,000 traces of 10 spans) as OTLP JSON lines, drawn
with different seeds (``bench/tracegen.py``, cached in the temp dir). Measured, each in a fresh
process: ``tracekit analyze --format json`` of the baseline and of the candidate (default ``--jobs``),
then ``tracekit diff --format json`` of the two with ``--jobs auto`` (the sides read at once when two
cores are free) and ``--jobs 1``. Printed: wall and CPU seconds and peak RSS of each, and the ratio
of the diff to the two analyses (goal: about 1, the diff reuses the analyzer's per-trace work and
keeps no span). CPU seconds are the steadier figure on a shared machine.

``python -m bench diff`` runs it; ``TRACEKIT_BENCH_TRACES`` shrinks the input for a quick look.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from bench.bench_analyze import SPANS_PER_TRACE, analyze_file, measure
from bench.tracegen import cached_otlp_jsonl

GOAL_RATIO = 1.0


def main() -> None:
    n_traces = int(os.environ.get("TRACEKIT_BENCH_TRACES", "100000"))
    base = cached_otlp_jsonl(n_traces, SPANS_PER_TRACE)
    cand = cached_otlp_jsonl(n_traces, SPANS_PER_TRACE, seed=2)
    spans = n_traces * SPANS_PER_TRACE
    print(f"inputs: {base.name}, {cand.name} ({spans:,} spans each; {os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory() as tmp:
        analyses = [analyze_file(path, Path(tmp) / f"{path.stem}.json", "auto") for path in (base, cand)]
        diffs = {}
        for jobs in ("auto", "1"):
            out = Path(tmp) / f"diff-{jobs}.json"
            cmd = [
                sys.executable,
                "-m",
                "tracekit",
                "diff",
                str(base),
                str(cand),
                "-o",
                str(out),
                "--jobs",
                jobs,
            ]
            diffs[jobs] = measure(cmd)
            result = json.loads(out.read_text())
    a_wall = sum(a[0] for a in analyses)
    a_cpu = sum(a[1] for a in analyses)
    for name, (wall, cpu, rss) in zip(("baseline", "candidate"), analyses, strict=True):
        print(f"analyze --format json {name}: {wall:.2f} s wall, {cpu:.2f} s cpu, peak RSS {rss:,.0f} MB")
    for jobs, (wall, cpu, rss) in diffs.items():
        print(f"diff --jobs {jobs}: {wall:.2f} s wall, {cpu:.2f} s cpu, peak RSS {rss:,.0f} MB")
        print(
            f"  diff / (analyze + analyze): {wall / a_wall:.2f} (wall)  {cpu / a_cpu:.2f} (cpu)"
            f"   goal about {GOAL_RATIO:.0f}"
        )
    comparisons = result["settings"]["comparisons"]
    print(f"verdict: {result['verdict']} ({comparisons} comparisons): {result['headline']}")


if __name__ == "__main__":
    main()

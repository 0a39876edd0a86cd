"""Instructions per span (valgrind's callgrind): the analyzer's cost in a figure the machine's load
does not move.

On the shared 2-core VM, wall and CPU seconds of the same run move by up to 30% within an hour, which
hides any change under that. Callgrind counts the instructions a program executes: the same binary,
input and environment give the same count, whatever else runs. Each figure is a *marginal* cost:
the count for 6,000 traces minus the count for 2,000 (10 spans each, Collector-style OTLP JSON lines
from ``bench/tracegen.py``), over the 40,000 spans between them, so interpreter start-up and imports
do not count. Printed: ``tracekit analyze --format json --jobs 1``, the plain msgspec decode of the
same lines (what the analyze/decode goal in docs/performance.md compares with), the analyzer's typed
decode, and the ratios. Instructions are not time (a cache miss costs more than an add), so this
complements the timed benches, it does not replace them.

Skipped, with a line saying so, where valgrind is not installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.tracegen import cached_otlp_jsonl

SMALL, LARGE, SPANS_PER_TRACE = 2_000, 6_000, 10
GOAL_RATIO = 3.0

#: Runs one of bench_analyze's decode loops on the file named by argv[1].
_DECODE = "import sys, pathlib, bench.bench_analyze as b; b.{fn}(pathlib.Path(sys.argv[1]))"


def collected(cmd: list[str]) -> int:
    """Instructions ``cmd`` executed under callgrind.

    String hashing is seeded per process, and the seed moves dict and set probing: the same run
    varied by about 1,500 instructions per span between seeds. A fixed seed makes
    the count repeat exactly, so two commits compare on their code alone.
    """
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd],
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ, PYTHONHASHSEED="0"),
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"callgrind run failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return int(found.group(1))


def per_span(make_cmd: Callable[[Path], list[str]]) -> float:
    """Marginal instructions per span of ``make_cmd(path)`` between the small and the large input."""
    small = collected(make_cmd(cached_otlp_jsonl(SMALL, SPANS_PER_TRACE)))
    large = collected(make_cmd(cached_otlp_jsonl(LARGE, SPANS_PER_TRACE)))
    return (large - small) / ((LARGE - SMALL) * SPANS_PER_TRACE)


def main() -> None:
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: instruction counts skipped (apt-get install valgrind)")
        return
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "report.json")

        def analyze(path: Path) -> list[str]:
            return [py, "-m", "tracekit", "analyze", str(path), "--format", "json", "-o", out, "--jobs", "1"]

        analyze_n = per_span(analyze)
    plain_n = per_span(lambda path: [py, "-c", _DECODE.format(fn="decode_file"), str(path)])
    typed_n = per_span(lambda path: [py, "-c", _DECODE.format(fn="typed_decode_file"), str(path)])
    print(f"marginal instructions per span, {SMALL:,} -> {LARGE:,} traces of {SPANS_PER_TRACE} spans:")
    print(f"  tracekit analyze --format json --jobs 1: {analyze_n:,.0f}")
    print(f"  plain decode (msgspec, untyped):         {plain_n:,.0f}")
    print(f"  typed decode (the analyzer's structs):   {typed_n:,.0f}")
    print(f"  analyze/plain decode: {analyze_n / plain_n:.2f}   goal <= {GOAL_RATIO} (in seconds)")
    print(f"  analyze/typed decode: {analyze_n / typed_n:.2f}")


if __name__ == "__main__":
    main()

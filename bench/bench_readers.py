"""Reader throughput on a Collector-style file: ``python -m bench readers``.

Generates (once, cached in the temp dir) ~1,000,000 spans in ~100,000 traces as OTLP JSONL, each
line a batch of spans from many traces (``bench/tracegen.py``), then measures in separate
subprocesses, so each peak RSS is honest:

- a plain decode of every line with the same JSON library (msgspec, untyped);
- ``read_traces`` over the file, consuming every Trace (typed decode + model Spans + assembly).

Prints spans/s for both, the ratio read/plain and each peak RSS. Target (docs/performance.md): the reader is a
small part of an analyzer doing >= 500,000 spans/s at <= 3x a plain decode, under 1 GB.

The machine is shared, so the figures that count are CPU time (``time.process_time``: what this
process used, not how long it waited for a core) and the ratio. The two measurements alternate,
run after run, so both see the same background load; the best run of each is reported.
"""

from __future__ import annotations

import json
import subprocess
import sys

from bench.tracegen import cached_otlp_jsonl

N_TRACES = 100_000
SPANS_PER_TRACE = 10
#: Each measurement runs this many times (alternating); the best run (least CPU) is reported.
RUNS = 3

_PLAIN = """
import json, resource, sys, time
import msgspec
dec = msgspec.json.Decoder()
t, c = time.perf_counter(), time.process_time()
n = 0
with open(sys.argv[1], "rb") as f:
    for line in f:
        doc = dec.decode(line)
        for rs in doc["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                n += len(ss["spans"])
dt = time.perf_counter() - t
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"spans": n, "seconds": dt, "cpu": time.process_time() - c, "rss_mb": ru.ru_maxrss / 1024}))
"""

_READ = """
import json, resource, sys, time
from tracekit.analyze.readers import read_traces
t, c = time.perf_counter(), time.process_time()
n = traces = 0
for trace in read_traces(sys.argv[1]):
    n += len(trace.spans)
    traces += 1
dt = time.perf_counter() - t
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"spans": n, "traces": traces, "seconds": dt, "cpu": time.process_time() - c,
                  "rss_mb": ru.ru_maxrss / 1024}))
"""


def _run(code: str, path: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _best_pair(path: str, runs: int) -> tuple[dict, dict]:
    """Best of ``runs`` for each, runs alternating (the least disturbed run has the least CPU)."""
    plain, read = [], []
    for _ in range(runs):
        plain.append(_run(_PLAIN, path))
        read.append(_run(_READ, path))
    return min(plain, key=lambda r: r["cpu"]), min(read, key=lambda r: r["cpu"])


def main() -> None:
    path = cached_otlp_jsonl(N_TRACES, SPANS_PER_TRACE)
    size_mb = path.stat().st_size / 1e6
    print(
        f"file: {path} ({size_mb:.0f} MB, {N_TRACES} traces x {SPANS_PER_TRACE} spans, Collector-style lines)"
    )
    plain, read = _best_pair(str(path), RUNS)
    for label, r in (("plain msgspec decode", plain), ("read_traces", read)):
        print(
            f"{label:<21} {r['spans']:,} spans: {r['cpu']:.2f} s CPU = {r['spans'] / r['cpu']:,.0f} spans/s "
            f"({r['cpu'] / r['spans'] * 1e6:.2f} us/span; {r['seconds']:.2f} s wall), "
            f"peak RSS {r['rss_mb']:.0f} MB"
        )
    print(f"traces read: {read['traces']:,}")
    print(
        f"ratio read_traces / plain decode: {read['cpu'] / plain['cpu']:.2f} CPU "
        f"({read['seconds'] / plain['seconds']:.2f} wall)"
    )


if __name__ == "__main__":
    main()

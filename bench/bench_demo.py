"""End-to-end demo throughput: requests/s through loadgen -> ingress -> pods -> SQLite, fully traced.

Runs the baseline scenario with the load generator unpaced (``rate 0``), so the figure is what the
local journey sustains on this machine with every span exported to the embedded receiver, then
analysed. Also prints the analysis speed over the collected file.
"""

from __future__ import annotations

import time

from demo_app import scenarios
from demo_app.launcher import Demo, DemoOptions
from tracekit.analyze.api import analyze_paths

REQUESTS = 400


def main() -> None:
    for replicas in (1, 2):
        demo = Demo(DemoOptions(scenarios.get("baseline"), requests=REQUESTS, replicas=replicas, rate=0))
        try:
            run = demo.run()
            started = time.perf_counter()
            report = analyze_paths([run.traces_path])
            analysis_s = time.perf_counter() - started
        finally:
            demo.cleanup()
        ok = sum(1 for r in run.results if 200 <= r["status"] < 300)
        latencies = sorted(r["ms"] for r in run.results)
        rps, sps = REQUESTS / run.load_s, run.spans_received / run.load_s
        p50 = latencies[len(latencies) // 2]
        traces = report["summary"]["traces"]
        print(
            f"replicas={replicas}: {REQUESTS} requests in {run.load_s:.2f} s = {rps:,.0f} req/s ({ok} ok), "
            f"client p50 {p50:.1f} ms; {run.spans_received:,} spans = {sps:,.0f} spans/s; "
            f"whole run {run.elapsed_s:.1f} s; analysis of {traces} traces {analysis_s:.2f} s"
        )

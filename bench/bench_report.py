"""HTML report figures for a 10,000-trace input: analyse, render, file size, load time in Chromium.

Prints figures only (no assertions): the report must stay small and quick to open however many
traces went in, because it embeds aggregates plus at most 50 waterfalls; and the CLI that writes it
must stay within bounded memory however large the input (first lines: 10,000 and 100,000 traces).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from bench.tracegen import cached_otlp_jsonl
from tests.browser import CHROMIUM, CHROMIUM_ARGS


def cli_figures() -> None:
    """``tracekit analyze FILE -o report.html`` as a user runs it: the page streams (two reads of the
    input), so peak memory must not grow with the number of traces."""
    import sys

    from bench.bench_analyze import measure

    for n in (10_000, int(os.environ.get("TRACEKIT_BENCH_TRACES", "100000"))):
        source = cached_otlp_jsonl(n, 10)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "report.html"
            cmd = [sys.executable, "-m", "tracekit", "analyze", str(source), "-o", str(out)]
            wall, cpu, rss_mb = measure(cmd)
            size = out.stat().st_size
        print(
            f"CLI -o report.html, {n:,} traces ({n * 10:,} spans): {wall:.1f} s wall, {cpu:.1f} s cpu, "
            f"peak RSS {rss_mb:,.0f} MB, page {size / 1024:.0f} KiB"
        )


def main(n_traces: int = 10_000) -> None:
    cli_figures()
    from tracekit.analyze.api import analyze_paths
    from tracekit.analyze.renderers.html import build_view, render_html

    source = cached_otlp_jsonl(n_traces, 10)
    t0 = time.perf_counter()
    report = analyze_paths([source], include_spans=True)
    t1 = time.perf_counter()
    build_view(report)
    t2 = time.perf_counter()
    html = render_html(report)
    t3 = time.perf_counter()
    size = len(html.encode("utf-8"))
    print(
        f"input: {n_traces} traces, {report['summary']['spans']} spans ({source.stat().st_size / 1e6:.1f} MB)"
    )
    print(f"analyze_paths(include_spans=True): {t1 - t0:.2f} s")
    print(f"build_view (aggregates + sample):  {t2 - t1:.2f} s")
    print(f"render_html total:                 {t3 - t2:.2f} s")
    print(f"report size: {size / 1024:.0f} KiB")
    if not os.access(CHROMIUM, os.X_OK):
        print("chromium not installed: load time not measured")
        return
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.html"
        path.write_text(html, encoding="utf-8")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            times = []
            for _ in range(3):
                start = time.perf_counter()
                page.goto(path.as_uri())
                page.wait_for_selector("body[data-ready='true']", state="attached")
                times.append(time.perf_counter() - start)
            nav = page.evaluate(
                "(() => { const n = performance.getEntriesByType('navigation')[0];"
                " return [n.domContentLoadedEventEnd, n.loadEventEnd]; })()"
            )
            browser.close()
    print(f"load in Chromium (goto -> drawn), 3 runs: {', '.join(f'{t * 1000:.0f} ms' for t in times)}")
    print(f"navigation timing: DOMContentLoaded {nav[0]:.0f} ms, load {nav[1]:.0f} ms")


if __name__ == "__main__":
    main()

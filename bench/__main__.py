"""Run every benchmark module (``bench/bench_*.py``) in turn: ``python -m bench [NAME...]``.

Each module measures side by side in one run and prints ratios plus absolute figures; nothing here
asserts on time (the printed ratios are read against the targets in docs/performance.md).

Each module runs in a fresh interpreter: peak RSS is a high-water mark that Linux keeps across fork and
exec, so one benchmark's memory would otherwise show up in the next one's figures.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import time

import bench


def main(argv: list[str]) -> int:
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
    wanted = [n for n in names if not argv or any(a in n for a in argv)]
    failed = 0
    for name in wanted:
        print(f"\n=== {name} ===", flush=True)
        started = time.perf_counter()
        code = f"import bench.{name} as m; m.main()"
        done = subprocess.run([sys.executable, "-c", code], check=False)
        if done.returncode != 0:
            print(f"({name} failed with exit code {done.returncode})", flush=True)
            failed += 1
        print(f"({name} took {time.perf_counter() - started:.1f} s)", flush=True)
    return 1 if failed else 0


sys.exit(main(sys.argv[1:]))

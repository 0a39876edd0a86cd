"""Run every benchmark module (``bench/bench_*.py``) in turn: ``python -m bench [NAME...]``.

Each module measures side by side in one run and prints ratios plus absolute figures; nothing here
asserts on time (goals are checked by reading the printed ratios against the issues' targets).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import bench


def main(argv: list[str]) -> int:
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
    wanted = [n for n in names if not argv or any(a in n for a in argv)]
    for name in wanted:
        print(f"\n=== {name} ===", flush=True)
        started = time.perf_counter()
        importlib.import_module(f"bench.{name}").main()
        print(f"({name} took {time.perf_counter() - started:.1f} s)", flush=True)
    return 0


sys.exit(main(sys.argv[1:]))

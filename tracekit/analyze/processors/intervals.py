"""Time covered by a set of intervals, overlaps counted once (network gaps, work outside the root)."""

from __future__ import annotations

from collections.abc import Iterable


def union_ns(intervals: Iterable[tuple[int, int]]) -> int:
    """Length of the union of ``(start, end)`` intervals; empty or inverted ones count nothing."""
    covered = 0
    run_start = run_end = None
    for lo, hi in sorted(intervals):
        if hi <= lo:
            continue
        if run_end is None or lo > run_end:
            if run_start is not None and run_end is not None:
                covered += run_end - run_start
            run_start, run_end = lo, hi
        elif hi > run_end:
            run_end = hi
    if run_start is not None and run_end is not None:
        covered += run_end - run_start
    return covered

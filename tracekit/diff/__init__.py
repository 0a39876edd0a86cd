"""Compare two captures layer by layer: which layer of the request path got slower, on which route, and
how surely (``tracekit diff``; docs/diff.md).

``read_side(name, paths, options)`` turns trace files or saved analyzer reports into per-trace layer
figures (:class:`~tracekit.diff.sides.Side`); ``diff(baseline, candidate, options)`` returns the JSON
contract; ``tracekit.diff.text`` and ``tracekit.diff.html`` render it.
"""

from __future__ import annotations

from tracekit.diff.compare import DiffOptions, diff
from tracekit.diff.sides import ReadOptions, Side, read_side

__all__ = ["DiffOptions", "ReadOptions", "Side", "diff", "read_side"]

"""Critical path: the last-finishing-child walk of Jaeger UI's critical path.

Starting at the root's end, the walk repeatedly descends into the child that finished last before the
current instant; the parent owns the time between that child's end and the instant, and once a span
has no eligible child left it owns the rest back to its start, and the walk returns to its parent at
the span's start. So every instant of the root's duration belongs to exactly one span.

As in Jaeger UI, a child is first clipped to its parent's (clipped) interval: a child that overflows
its parent counts only inside it, a child entirely outside it is off the path, and FOLLOWS_FROM
children (async work the parent did not wait for) are off the path. The walk is iterative (deep
traces) and considers each child once (zero-length children cannot loop it).

**Near-sequential siblings.** Timestamps are rounded to a clock tick (a microsecond in Jaeger, Zipkin
and many SDKs), so a child that ended as its next sibling started can appear to end a tick *after*
it. When the walk returns to a parent at a child's start, an earlier sibling that overlaps that start
by less than :data:`OVERLAP_TOLERANCE_NS`, and by less than half its own duration (so two short spans
that really ran side by side stay parallel), is taken as sequential: the walk enters it, its end cut
to the instant, instead of skipping it and charging its time to the parent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tracekit.analyze.model import RefType

if TYPE_CHECKING:
    from tracekit.analyze.processors import Options
    from tracekit.analyze.tree import SpanNode, SpanTree


#: Siblings overlapping by less than this are sequential: one tick of a microsecond clock on each of
#: the two timestamps that meet (docs/design.md, "Critical path").
OVERLAP_TOLERANCE_NS = 2_000


def _end_key(node: SpanNode) -> tuple[int, int]:
    # Latest clipped end first; on a tie the earlier start (the longer child) first.
    return (-node.ce, node.cs)


def critical_path(tree: SpanTree, options: Options) -> SpanTree:
    """Fill ``tree.segments`` (time order) and each node's ``self_ns`` and ``critical``."""
    root = tree.root
    if root is None:
        return tree
    follows = RefType.FOLLOWS_FROM
    root.cs = root.start
    root.ce = root.end
    stack = [root]
    while stack:
        node = stack.pop()
        ps = node.cs
        pe = node.ce
        items = []
        for child in node.children:
            if child.span.ref_type is follows:
                continue
            cs = child.start
            ce = child.end
            if cs < ps:
                cs = ps
            if ce > pe:
                ce = pe
            if cs > ce:
                continue  # entirely outside its parent: off the path
            child.cs = cs
            child.ce = ce
            items.append(child)
            if child.children:
                stack.append(child)
        if items:
            if len(items) > 1:
                items.sort(key=_end_key)
            node.cands = items

    segments: list[tuple[SpanNode, int, int]] = []
    append = segments.append
    tolerance = OVERLAP_TOLERANCE_NS
    node = root
    root.critical = True
    cursor = root.end
    while True:
        cands = node.cands
        if cands:
            i = node.cursor
            n = len(cands)
            while i < n and cands[i].ce > cursor:
                child = cands[i]
                overlap = child.ce - cursor
                if overlap < tolerance and overlap * 2 < child.ce - child.cs:
                    break  # ends within the tolerance after the instant: sequential (docstring)
                i += 1
            if i < n:
                child = cands[i]
                node.cursor = i + 1
                ce = child.ce
                if ce > cursor:
                    ce = child.ce = cursor
                elif ce < cursor:
                    append((node, ce, cursor))
                    node.self_ns += cursor - ce
                child.critical = True
                node = child
                cursor = ce
                continue
            node.cursor = i
        start = node.cs
        if start < cursor:
            append((node, start, cursor))
            node.self_ns += cursor - start
        if node is root:
            break
        cursor = start
        parent = node.parent
        assert parent is not None  # only the root has none, and the walk ends there
        node = parent
    segments.reverse()
    tree.segments = segments
    return tree

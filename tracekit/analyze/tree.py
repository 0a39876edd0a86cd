"""The span tree of one trace: nodes with parent and children, plus what was wrong with the input.

Readers emit flat :class:`~tracekit.analyze.model.Trace` objects; every processor works on the
:class:`SpanTree` built here. The tree never drops spans the analysis could use:

- a span whose parent id is not in the trace (an *orphan*: the parent was lost or not sampled) stays,
  as an extra root, with a warning;
- several spans without a parent all stay as roots, with a warning;
- a duplicate span id keeps the first span read and warns (the others are dropped: their children
  could not be told apart anyway);
- a parent cycle (``a -> b -> a``) is broken at its earliest-starting member, which becomes a root,
  with a warning.

**Which root is analysed.** Attribution covers one root span's duration (the request as its first
observer saw it). The tree picks, among the spans with no parent in the trace, one with a duration
over one without (a clamped zero-length span), then one with no parent id at all over an orphan, then
the earliest-starting, then the longest, then the lowest span id (not the order of the file). A
zero-length root with children hands over to its longest child (with a warning). The other roots
are reported in the warnings and stay off the attribution.

Every walk here and in the processors is iterative: a 1,000-level-deep trace must not hit Python's
recursion limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tracekit.analyze.model import RefType, Span, SpanKind, StatusCode, Trace


class SpanNode:
    """One span in the tree, plus the per-span results processors fill in.

    ``start``/``end`` begin as the span's own times and change only through clock-skew adjustment;
    the span itself is immutable and keeps the recorded times.
    """

    __slots__ = (
        "cands",
        "ce",
        "children",
        "critical",
        "cs",
        "cursor",
        "depth",
        "end",
        "failed",
        "hop_layer",
        "layer",
        "parent",
        "self_ns",
        "shift_ns",
        "span",
        "start",
    )

    def __init__(self, span: Span) -> None:
        self.span = span
        self.parent: SpanNode | None = None
        self.children: list[SpanNode] = []
        self.depth = 0
        self.start = span.start_ns
        self.end = span.end_ns
        #: Clock-skew shift applied to this span (ns), 0 when none.
        self.shift_ns = 0
        #: Layer of the component that emitted the span (layer classification).
        self.layer = "unknown"
        #: Layer its critical-path time is attributed to: ``layer`` except for CLIENT spans, whose
        #: uncovered time belongs to the hop they cross (edge, service, sidecar, db, external).
        self.hop_layer = "unknown"
        #: Time on the critical path attributed to this span (ns).
        self.self_ns = 0
        self.critical = False
        self.failed = False
        # Critical-path scratch: clipped bounds, eligible children (latest end first), walk cursor.
        self.cs = self.ce = 0
        self.cands: list[SpanNode] | tuple[()] = ()
        self.cursor = 0

    @property
    def duration(self) -> int:
        return self.end - self.start

    def __repr__(self) -> str:
        return f"SpanNode({self.span.span_id} {self.span.name!r} {self.layer})"


class SpanTree:
    """All nodes of one trace, the chosen root, and the processors' per-trace results."""

    __slots__ = (
        "attribution",
        "blocks",
        "by_id",
        "diagnosis",
        "error_spans",
        "hops",
        "inconsistent_pods",
        "ingress_servers",
        "nodes",
        "order",
        "outside",
        "overflows",
        "root",
        "roots",
        "segments",
        "service_ns",
        "shifted",
        "trace",
        "warnings",
        "work",
    )

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        #: Nodes in the order the reader produced the spans (duplicates dropped).
        self.nodes: list[SpanNode] = []
        self.by_id: dict[str, SpanNode] = {}
        #: Every node without a parent in the trace (true roots, orphans, broken cycles).
        self.roots: list[SpanNode] = []
        #: Every node in waterfall order (depth first from each root, siblings by start), so parents
        #: come before their children. Iterating this list costs a quarter of walking the tree with
        #: a stack, and several steps need exactly this order.
        self.order: list[SpanNode] = []
        #: id(root node) -> (first, end) index of its subtree in :attr:`order`.
        self.blocks: dict[int, tuple[int, int]] = {}
        #: The root attribution and the timeline cover; None for a trace without spans.
        self.root: SpanNode | None = None
        self.warnings: list[str] = list(trace.warnings)
        #: Layer -> ns on the critical path; sums exactly to ``root.duration``.
        self.attribution: dict[str, int] = {}
        #: Critical-path segments ``(node, start_ns, end_ns)`` in time order.
        self.segments: list[tuple[SpanNode, int, int]] = []
        #: Service -> ns on the critical path (attribution processor).
        self.service_ns: dict[str, int] = {}
        self.diagnosis: dict[str, object] = {
            "failed_layer": None,
            "reason": "",
            "span_id": None,
            "outcome": "ok",
        }
        #: The hop timeline (``timeline.Hop`` structs, path order), filled by the timeline processor.
        self.hops: list[Any] = []
        #: Spans of the trace with status ERROR (duplicates included), counted while building.
        self.error_spans = 0
        #: Did clock-skew adjustment move any span? (Later steps skip re-sorting when not.)
        self.shifted = False
        #: Children that start before or end after their parent, noted while linking: the only
        #: candidates for clock-skew adjustment, so that step need not look at every span again.
        self.overflows: list[SpanNode] = []
        #: Did layer classification already warn about a pod identity the addresses contradict?
        self.inconsistent_pods = False
        #: The ingress SERVER spans (layer classification), for the diagnosis.
        self.ingress_servers: list[SpanNode] = []
        #: Work under the root outside its window (timeline processor): (spans, ns outside).
        self.outside: tuple[int, int] = (0, 0)
        #: ns from the earliest start to the latest end of the root and everything under it.
        self.work = 0

    def input_id(self, span_id: str) -> str:
        """A span id as the input wrote it, for messages (a reader may have derived the one we use)."""
        return self.trace.id_aliases.get(span_id, span_id)

    @property
    def trace_id(self) -> str:
        return self.trace.trace_id

    def walk(self, start: SpanNode | None = None) -> Iterator[SpanNode]:
        """Yield ``start`` (default: the chosen root) and its descendants, depth first, pre-order."""
        first = start or self.root
        if first is None:
            return
        stack = [first]
        while stack:
            node = stack.pop()
            yield node
            if node.children:
                stack.extend(reversed(node.children))

    def waterfall(self, root: SpanNode) -> list[SpanNode]:
        """``root`` and its descendants in waterfall order (depth first, siblings by start).

        A slice of :attr:`order` when ``root`` is one of the roots it was built from and no
        clock-skew shift has reordered siblings since; otherwise a walk of the (re-sorted) children.
        """
        block = self.blocks.get(id(root))
        if block is not None and not self.shifted:
            return self.order[block[0] : block[1]]
        return list(self.walk(root))

    def dispose(self) -> None:
        """Break the parent/children cycles so the tree is freed by reference counting at once.

        A million spans' worth of cyclic nodes would otherwise wait for (and slow down) the cyclic
        garbage collector; :class:`~tracekit.analyze.api.Analysis` calls this once a trace is done.
        """
        for node in self.nodes:
            # Only parent -> child references close a cycle; leaves have none to drop.
            if node.children:
                node.children = []
                node.cands = ()
        self.segments = []
        self.order = []
        self.blocks = {}
        self.by_id = {}
        self.roots = []
        self.root = None

    def self_check(self) -> None:
        """Assert the invariants processors promise; tests call this after each processor.

        - a SERVER span called by a CLIENT span on another host lies inside it after skew adjustment
          (unless it is longer than its parent, which no shift can fix, and is never truncated);
        - the attribution, once computed, sums exactly to the root's duration, with nothing negative.
        """
        for node in self.nodes:
            parent = node.parent
            if (
                parent is not None
                and node.span.kind == SpanKind.SERVER
                and parent.span.kind == SpanKind.CLIENT
                and node.span.ref_type == RefType.CHILD_OF
                and node.duration <= parent.duration
                and node.shift_ns
            ):
                assert parent.start <= node.start and node.end <= parent.end, (
                    f"span {node.span.span_id} lies outside its parent after skew adjustment"
                )
        if self.attribution and self.root is not None:
            total = sum(self.attribution.values())
            assert total == self.root.duration, f"attribution {total} != root duration {self.root.duration}"
            assert all(v >= 0 for v in self.attribution.values()), "negative attribution"


def build_span_tree(trace: Trace) -> SpanTree:
    """Link the trace's spans into a tree (see the module docstring for what is kept and warned)."""
    tree = SpanTree(trace)
    by_id = tree.by_id
    nodes = tree.nodes
    add_node = nodes.append
    duplicates = errors = 0
    error = StatusCode.ERROR
    for span in trace.spans:
        # Counted here, over every span read, because this is the one loop that sees them all.
        if span.status is error:
            errors += 1
        if span.span_id in by_id:
            duplicates += 1
            continue
        node = by_id[span.span_id] = SpanNode(span)
        add_node(node)
    tree.error_spans = errors
    if duplicates:
        tree.warnings.append(f"{duplicates} span(s) with a duplicate span id dropped (first one kept)")

    roots = tree.roots
    overflows = tree.overflows
    orphans = 0
    for node in nodes:
        pid = node.span.parent_id
        parent = by_id.get(pid) if pid is not None else None
        if parent is None:
            if pid is not None:
                orphans += 1
            roots.append(node)
        else:
            node.parent = parent
            parent.children.append(node)
            if node.start < parent.start or node.end > parent.end:
                overflows.append(node)
    if orphans:
        tree.warnings.append(f"{orphans} orphan span(s): parent span not in the trace")

    reached = _order_subtrees(tree, roots)
    if reached < len(nodes):
        _break_cycles(tree)

    if roots:
        root = min(roots, key=_root_key) if len(roots) > 1 else roots[0]
        if len(roots) > 1:
            tree.warnings.append(
                f"{len(roots)} root spans; analysing {tree.input_id(root.span.span_id)} ({root.span.name})"
            )
        while root.end <= root.start and root.children:
            # A zero-length root (often an end-before-start span the reader clamped) covers nothing:
            # analyse its longest child instead, and say so.
            child = max(root.children, key=lambda n: n.end - n.start)
            if child.end <= child.start:
                break
            tree.warnings.append(
                f"root span {tree.input_id(root.span.span_id)} has no duration; analysing its child "
                f"{tree.input_id(child.span.span_id)} "
                f"({child.span.name})"
            )
            root = child
        tree.root = root
    return tree


def _start_key(node: SpanNode) -> tuple[int, int]:
    return (node.start, -node.end)


def _root_key(node: SpanNode) -> tuple[bool, bool, int, int, str]:
    # Spans with a duration first (a clamped, zero-length root tells nothing), then true roots before
    # orphans (False sorts before True), then the earliest start, then the longest, then the lowest
    # span id (so the choice does not depend on the order a file happens to list the spans in).
    duration = node.end - node.start
    return (duration <= 0, node.span.parent_id is not None, node.start, -duration, node.span.span_id)


def _order_subtrees(tree: SpanTree, roots: list[SpanNode]) -> int:
    """Walk each root's subtree once, iteratively: sort each node's children by start, set their
    ``depth``, and append the nodes to ``tree.order`` in waterfall order (recording each root's
    block). Return how many nodes were reached. (One walk does all three: every pass over the nodes
    costs per span.)

    The walk goes straight on to a node's first child and stacks only the later siblings (in
    reverse, so they pop in start order): an only child, the commonest case, then costs no stack
    push and pop, no ``reversed`` iterator and no loop (this walk costs about 45% less on the bench
    traces, where most nodes have one child)."""
    order = tree.order
    add = order.append
    first = len(order)
    for root in roots:
        begin = len(order)
        stack: list[SpanNode] = []
        pop = stack.pop
        push = stack.extend
        node = root
        while True:
            add(node)
            children = node.children
            if children:
                depth = node.depth + 1
                if len(children) > 1:
                    children.sort(key=_start_key)
                    for child in children:
                        child.depth = depth
                    push(children[:0:-1])  # the later siblings, last first
                    node = children[0]
                else:
                    node = children[0]
                    node.depth = depth
                continue
            if not stack:
                break
            node = pop()
        tree.blocks[id(root)] = (begin, len(order))
    return len(order) - first


def _break_cycles(tree: SpanTree) -> None:
    """Nodes unreachable from any root sit on or under a parent cycle: cut each cycle once."""
    reached: set[int] = set()
    for root in tree.roots:
        for node in tree.walk(root):
            reached.add(id(node))
    for node in tree.nodes:
        if id(node) in reached:
            continue
        # Follow parents until a node repeats: that node is on the cycle.
        seen: list[SpanNode] = []
        seen_ids: set[int] = set()
        cur: SpanNode | None = node
        while cur is not None and id(cur) not in seen_ids and id(cur) not in reached:
            seen_ids.add(id(cur))
            seen.append(cur)
            cur = cur.parent
        if cur is None or id(cur) in reached:  # pragma: no cover - unreachable nodes always loop
            continue
        cycle = seen[seen.index(cur) :]
        cut = min(cycle, key=_start_key)
        assert cut.parent is not None
        cut.parent.children.remove(cut)
        cut.parent = None
        cut.depth = 0
        tree.roots.append(cut)
        tree.warnings.append(
            f"parent cycle through {len(cycle)} span(s) broken at span {tree.input_id(cut.span.span_id)} "
            f"({cut.span.name})"
        )
        _order_subtrees(tree, [cut])
        for sub in tree.walk(cut):
            reached.add(id(sub))

"""Clock-skew adjustment: a remote SERVER span must lie inside the CLIENT span that called it.

Different hosts have different clocks. When a SERVER span on another host than its CLIENT parent
starts before the client or ends after it, its host's clock is off; like Jaeger's ``clockskew``
adjuster we shift the server span and every descendant on the same host by one delta (the whole
subtree keeps its internal timing), centring the server span in its client span. A descendant on yet
another host is checked afresh against its (already shifted) parent. Spans are never truncated: a
server span longer than its client span cannot fit, so only its start is aligned.

The host of a span is ``k8s.node.name``, else ``host.name``, else ``host.id``, else its service name
(without any host information, two services are assumed to run on different clocks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tracekit import attributes as a
from tracekit.analyze.model import RefType, SpanKind

if TYPE_CHECKING:
    from tracekit.analyze.processors import Options
    from tracekit.analyze.tree import SpanNode, SpanTree


_HOST_KEYS = (a.K8S_NODE_NAME, "host.name", "host.id")


def host_key(node: SpanNode) -> str:
    """The clock a span was timed with (see the module docstring)."""
    span = node.span
    for key in _HOST_KEYS:
        host = span.resource.get(key) or span.attributes.get(key)
        if host:
            return f"host:{host}"
    return f"service:{span.service}"


def _amount(delta: int) -> str:
    """A shift for humans: milliseconds, or nanoseconds when below a microsecond."""
    return f"{delta / 1e6:+.3f} ms" if abs(delta) >= 1000 else f"{delta:+d} ns"


def _delta(child: SpanNode, parent: SpanNode) -> int:
    """How far ``child`` must move to sit inside ``parent`` (0 when it already does)."""
    p_start, p_end = parent.start, parent.end
    c_start, c_end = child.start, child.end
    if p_start <= c_start and c_end <= p_end:
        return 0
    p_dur, c_dur = p_end - p_start, c_end - c_start
    if c_dur > p_dur:
        # Cannot fit: align the starts (never truncate the child).
        return p_start - c_start
    # Centre the child: the network latency is split evenly between request and response.
    return p_start + (p_dur - c_dur) // 2 - c_start


def _needs_adjusting(tree: SpanTree) -> bool:
    """Is any remote SERVER span outside its CLIENT parent? (Most traces: no, and we stop here.)"""
    server, client, child_of = SpanKind.SERVER, SpanKind.CLIENT, RefType.CHILD_OF
    for node in tree.nodes:
        parent = node.parent
        if (
            parent is not None
            and (node.start < parent.start or node.end > parent.end)
            and node.span.kind == server
            and parent.span.kind == client
            and node.span.ref_type == child_of
            and host_key(node) != host_key(parent)
        ):
            return True
    return False


def adjust_clock_skew(tree: SpanTree, options: Options) -> SpanTree:
    """Shift skewed remote server subtrees into their client parents; warn with the amount."""
    if not _needs_adjusting(tree):
        return tree
    hosts: dict[int, str] = {}
    for root in tree.roots:
        stack: list[tuple[SpanNode, int]] = [(root, 0)]
        while stack:
            node, inherited = stack.pop()
            parent = node.parent
            delta = inherited
            if parent is not None:
                key = hosts.get(id(node))
                if key is None:
                    key = hosts[id(node)] = host_key(node)
                pkey = hosts.get(id(parent))
                if pkey is None:
                    pkey = hosts[id(parent)] = host_key(parent)
                if key != pkey:
                    delta = 0
                    span = node.span
                    if (
                        span.kind == SpanKind.SERVER
                        and parent.span.kind == SpanKind.CLIENT
                        and span.ref_type == RefType.CHILD_OF
                    ):
                        delta = _delta(node, parent)
                        if delta:
                            tree.warnings.append(
                                f"clock skew: shifted span {span.span_id} ({span.service}) and its same-host "
                                f"descendants by {_amount(delta)} to fit inside its client span "
                                f"{parent.span.span_id}"
                            )
            if delta:
                node.start += delta
                node.end += delta
                node.shift_ns = delta
            if node.children:
                stack.extend((child, delta) for child in node.children)
    return tree

"""Clock-skew adjustment: a remote SERVER span must lie inside the CLIENT span that called it.

Different hosts have different clocks. When a SERVER span on another host than its CLIENT parent
starts before the client or ends after it, its host's clock is off; like Jaeger's ``clockskew``
adjuster we shift the server span and every descendant on the same host by one delta (the whole
subtree keeps its internal timing), centring the server span in its client span. A descendant on yet
another host is checked afresh against its (already shifted) parent. Spans are never truncated: a
server span longer than its client span cannot fit, so only its start is aligned.

**Same clock or not** (:func:`same_clock`). Only a pair on two hosts is adjusted: on one host the
clock is shared, and a server span that ends after its client span is real (the server finished
writing the response after the client had read it), not skew. The host comes from the resource (then
span) attributes ``k8s.node.name``, ``host.name``, ``host.id``, compared like with like: the first
of these keys *both* spans carry decides (a pod's ``host.name`` is usually its pod name, so the node
name wins when both have it). When one span has host information and the other has none in common,
the clocks cannot be shown to be the same and the pair is treated as two hosts (as Jaeger's adjuster
does for a span without a host key): an external client calling the cluster is the usual case. Only
when neither span has any host information does the service name stand in for the host (two
services, two clocks assumed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tracekit import attributes as a
from tracekit.analyze.model import RefType, SpanKind

if TYPE_CHECKING:
    from tracekit.analyze.processors import Options
    from tracekit.analyze.tree import SpanNode, SpanTree


_HOST_KEYS = (a.K8S_NODE_NAME, "host.name", "host.id")
_HOST_KEY_SET = frozenset(_HOST_KEYS)
#: The values of :data:`_HOST_KEYS`, in that order (None where absent).
HostIdentity = tuple[Any, ...]
#: id(resource) -> (resource, host identity): one per process, shared by its spans (the resource is
#: kept referenced so its id cannot be reused while cached).
_host_cache: dict[int, tuple[Any, HostIdentity]] = {}


def host_identity(node: SpanNode) -> HostIdentity:
    """The span's values of :data:`_HOST_KEYS` (resource first, then span attributes; None if absent)."""
    span = node.span
    res = span.resource
    attrs = span.attributes
    if attrs and not _HOST_KEY_SET.isdisjoint(attrs):
        return tuple(res.get(k) or attrs.get(k) or None for k in _HOST_KEYS)
    hit = _host_cache.get(id(res))
    if hit is not None and hit[0] is res:
        return hit[1]
    identity = tuple(res.get(k) or None for k in _HOST_KEYS)
    if len(_host_cache) > 10_000:
        _host_cache.clear()
    _host_cache[id(res)] = (res, identity)
    return identity


def same_clock(x: SpanNode, y: SpanNode) -> bool:
    """Were the two spans timed by the same clock? (See the module docstring.)"""
    hx = host_identity(x)
    hy = host_identity(y)
    for vx, vy in zip(hx, hy, strict=True):
        if vx is not None and vy is not None:
            return bool(vx == vy)
    if any(v is not None for v in hx) or any(v is not None for v in hy):
        return False
    return x.span.service == y.span.service


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
    for node in tree.overflows:  # children outside their parent, noted by build_span_tree
        parent = node.parent
        if (
            parent is not None
            and (node.start < parent.start or node.end > parent.end)
            and node.span.kind == server
            and parent.span.kind == client
            and node.span.ref_type == child_of
            and not same_clock(node, parent)
        ):
            return True
    return False


def adjust_clock_skew(tree: SpanTree, options: Options) -> SpanTree:
    """Shift skewed remote server subtrees into their client parents; warn with the amount."""
    if not _needs_adjusting(tree):
        return tree
    for root in tree.roots:
        stack: list[tuple[SpanNode, int]] = [(root, 0)]
        while stack:
            node, inherited = stack.pop()
            parent = node.parent
            delta = inherited
            if parent is not None and not same_clock(node, parent):
                # Another clock: the parent's shift does not carry over; check this pair afresh.
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
                            f"clock skew: shifted span {tree.input_id(span.span_id)} ({span.service}) "
                            f"and its same-host descendants by {_amount(delta)} to fit inside its client "
                            f"span {tree.input_id(parent.span.span_id)}"
                        )
            if delta:
                node.start += delta
                node.end += delta
                node.shift_ns = delta
                tree.shifted = True
            if node.children:
                stack.extend((child, delta) for child in node.children)
    return tree

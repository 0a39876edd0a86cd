"""The hop timeline: every span under the analysed root, in path order, ready for the renderers.

Path order is the waterfall order: depth first from the root, siblings by (skew-adjusted) start, so
the request reads top to bottom as it travelled (client, ingress, Service hop, app, sidecar, db).
Each hop carries its attributed layer (a CLIENT span's is the hop it crosses; ``span_layer`` is the
component that emitted it), its critical-path ``self_ms`` (the hops' ``self_ms`` sum to the trace's
duration) and the Kubernetes context of the process that emitted it.

**Work outside the root.** The root span is what the caller waited for; work it started may go on
after it ended (fire-and-forget, async jobs, a FOLLOWS_FROM child) or, with a clock off, seem to start
before it. :func:`count_outside_work` counts the spans under the root that reach outside its window,
and the time they cover there (the union of their parts outside it), and the span of all the work
(earliest start to latest end, ``tree.work``). A trace with such work gets one warning saying how
much; the attribution still covers the root's window only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from tracekit import attributes as a
from tracekit.analyze.model import StatusCode
from tracekit.analyze.processors.intervals import union_ns

if TYPE_CHECKING:
    from tracekit.analyze.processors import Options
    from tracekit.analyze.tree import SpanTree

#: Hop "k8s" key -> attribute key, looked up in the resource, then the span attributes.
K8S_CONTEXT: tuple[tuple[str, str], ...] = (
    ("namespace", a.K8S_NAMESPACE_NAME),
    ("pod", a.K8S_POD_NAME),
    ("node", a.K8S_NODE_NAME),
    ("container", a.K8S_CONTAINER_NAME),
    ("deployment", a.K8S_DEPLOYMENT_NAME),
)
#: The attribute keys of K8S_CONTEXT: a span carrying any of them in its own attributes gets its own
#: context instead of the one cached for its resource.
K8S_CONTEXT_KEYS = frozenset(key for _, key in K8S_CONTEXT)
KIND_NAMES = ("unspecified", "internal", "server", "client", "producer", "consumer")
STATUS_NAMES = {StatusCode.UNSET: "unset", StatusCode.OK: "ok", StatusCode.ERROR: "error"}


class Hop(msgspec.Struct, gc=False):
    """One hop of the timeline. Encodes to the JSON contract's hop object (fields in this order).

    A struct rather than a dict because a million of them are built per run; the API hands out plain
    dicts (:func:`hops_as_dicts`), and ``hop["layer"]`` works on both.
    """

    layer: str
    service: str
    name: str
    span_id: str
    start_ms: float
    duration_ms: float
    self_ms: float
    k8s: dict[str, Any]
    span_layer: str
    kind: str
    parent_id: str | None
    depth: int
    critical: bool
    status: str
    failed: bool

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)


def hops_as_dicts(hops: list[Any]) -> list[dict[str, Any]]:
    """The hops as plain dicts (what the API returns and the renderers read)."""
    if hops and isinstance(hops[0], Hop):
        plain: list[dict[str, Any]] = msgspec.to_builtins(hops)
        return plain
    return hops


def k8s_context(span: Any) -> dict[str, Any]:
    """The Kubernetes context of a span (only the keys it has)."""
    res = span.resource
    attrs = span.attributes
    out = {}
    for name, key in K8S_CONTEXT:
        value = res.get(key)
        if value is None:
            value = attrs.get(key)
        if value is not None:
            out[name] = value
    return out


#: id(resource) -> (resource, k8s context): one context per process, shared by its hops. The resource is
#: kept referenced so its id cannot be reused while cached.
_k8s_cache: dict[int, tuple[Any, dict[str, Any]]] = {}


def _sort_if_shifted(tree: SpanTree) -> None:
    """Clock-skew shifts can reorder siblings: restore start order where a shift happened."""
    if not tree.shifted:
        return
    for node in tree.nodes:
        if node.shift_ns and node.parent is not None and len(node.parent.children) > 1:
            node.parent.children.sort(key=lambda n: (n.start, -n.end))


def build_timeline(tree: SpanTree, options: Options) -> SpanTree:
    """Fill ``tree.hops``."""
    root = tree.root
    if root is None:
        return tree
    _sort_if_shifted(tree)
    t0 = root.start
    base_depth = root.depth
    k8s_cache = _k8s_cache
    if len(k8s_cache) > 10_000:
        k8s_cache.clear()
    hops: list[Hop] = []
    append = hops.append
    kinds = KIND_NAMES
    statuses = STATUS_NAMES
    context_keys = K8S_CONTEXT_KEYS
    for node in tree.waterfall(root):
        span = node.span
        attrs = span.attributes
        if attrs and not context_keys.isdisjoint(attrs):
            k8s = k8s_context(span)
        else:
            res = span.resource
            hit = k8s_cache.get(id(res))
            if hit is not None and hit[0] is res:
                k8s = hit[1]
            else:
                k8s = k8s_context(span)
                k8s_cache[id(res)] = (res, k8s)
        start = node.start
        append(
            Hop(
                node.hop_layer,
                span.service,
                span.name,
                span.span_id,
                (start - t0) / 1e6,
                (node.end - start) / 1e6,
                node.self_ns / 1e6,
                k8s,
                node.layer,
                kinds[span.kind],
                span.parent_id,
                node.depth - base_depth,
                node.critical,
                statuses[span.status],
                node.failed,
            )
        )
    tree.hops = hops
    return tree


def count_outside_work(tree: SpanTree, options: Options) -> SpanTree:
    """Fill ``tree.work`` and, for a trace with work outside the root's window, ``tree.outside``
    and its warning (see the module docstring). Apart from the hops: a report that is not kept
    (text output, ``--slowest``) needs no hops, but its warning counts."""
    root = tree.root
    if root is None:
        return tree
    t0, t1 = root.start, root.end
    tree.work = t1 - t0
    # A span under the root reaches outside its window only if some span on the way down sticks out
    # of its parent, and the tree noted every such span while linking: most traces skip this walk.
    if tree.overflows:
        outside = [(n.start, n.end) for n in tree.waterfall(root) if n.start < t0 or n.end > t1]
        if outside:
            _count_outside(tree, outside, t0, t1)
    return tree


def _count_outside(tree: SpanTree, outside: list[tuple[int, int]], t0: int, t1: int) -> None:
    """Fill ``tree.outside`` and ``tree.work`` from the spans reaching outside [t0, t1]; warn once."""
    covered = union_ns(
        [(s, min(e, t0)) for s, e in outside if s < t0] + [(max(s, t1), e) for s, e in outside if e > t1]
    )
    first = min(t0, min(s for s, _ in outside))
    last = max(t1, max(e for _, e in outside))
    tree.outside = (len(outside), covered)
    tree.work = last - first
    tree.warnings.append(
        f"{len(outside)} span(s) ran outside the root span's window: {covered / 1e6:.3f} ms of work "
        f"before or after it (the root lasted {(t1 - t0) / 1e6:.3f} ms, all its work "
        f"{(last - first) / 1e6:.3f} ms); the layers cover the root's window"
    )

"""Layer attribution: each critical-path segment's time goes to its span's hop layer.

The critical path covers every instant of the root span exactly once, in integer nanoseconds, so the
layers sum *exactly* to the root's duration (docs/design.md); renderers convert to milliseconds last.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tracekit.analyze.processors import Options
    from tracekit.analyze.tree import SpanTree


def attribute_layers(tree: SpanTree, options: Options) -> SpanTree:
    """Fill ``tree.attribution`` (layer -> ns, layers with time only, the root's layer at least) and
    ``tree.service_ns`` (service -> ns on the critical path, for the per-service aggregates)."""
    totals: dict[str, int] = {}
    services: dict[str, int] = {}
    # A node's self_ns is the sum of its segments (critical_path), so summing per node gives the
    # same totals with fewer steps than summing per segment.
    for node in tree.nodes:
        ns = node.self_ns
        if ns:
            layer = node.hop_layer
            totals[layer] = totals.get(layer, 0) + ns
            service = node.span.service
            services[service] = services.get(service, 0) + ns
    tree.service_ns = services
    if not totals and tree.root is not None:
        totals[tree.root.hop_layer] = 0
    tree.attribution = totals
    return tree

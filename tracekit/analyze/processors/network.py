"""The network part of a call: the time of a CLIENT span its callee's spans do not cover.

A call's duration is the caller's view; the callee's SERVER span (or any span of another service
under it) is the time the callee spent. What is left is the wire, kube-proxy, queueing, TLS: the
network. The critical path attributes this same gap to the hop layer of the call (``layers.py``);
this module gives it for *every* call, on the path or not, so the report's flow diagram can show the
network figure of each edge without computing it a second way (docs/design.md, "Layers").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tracekit.analyze.model import SpanKind
from tracekit.analyze.processors.intervals import union_ns
from tracekit.analyze.processors.placement import peer_host

if TYPE_CHECKING:
    from tracekit.analyze.tree import SpanNode

_SERVER = SpanKind.SERVER

#: Where the database product of a DB call is named, current convention first (for labels only: a
#: span *is* a DB call when the rule table says ``db``).
DB_SYSTEM_KEYS = ("db.system.name", "db.system", "db.type", "peer.service")


def network_ns(node: SpanNode) -> int:
    """ns of the call not covered by its remote children (the union of their intervals, clipped)."""
    start, end = node.start, node.end
    service = node.span.service
    covered = union_ns(
        (max(start, c.start), min(end, c.end))
        for c in node.children
        if c.span.kind == _SERVER or c.span.service != service
    )
    return max(0, end - start - covered)


def call_facts(node: SpanNode) -> dict[str, Any]:
    """What a report needs of a call besides the span: its network time, whom it called, and for a
    database call the product's name."""
    attrs = node.span.attributes
    out: dict[str, Any] = {"net_ms": network_ns(node) / 1e6, "peer": peer_host(attrs)}
    if node.hop_layer == "db":
        out["db_system"] = next((attrs[k] for k in DB_SYSTEM_KEYS if attrs.get(k)), None) or node.span.attr(
            "db.system"
        )
    return out

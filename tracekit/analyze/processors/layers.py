"""Layer classification: which part of the journey emitted each span, and which hop a CLIENT crosses.

Two results per span (see :class:`~tracekit.analyze.tree.SpanNode`):

``layer``
    The component that emitted the span: the first matching rule of the rule table
    (:mod:`tracekit.analyze.rules`); a SERVER span its CLIENT parent reached inside its own pod (same
    pod by identity *and* by the wire: :mod:`~tracekit.analyze.processors.placement`) is the sidecar;
    otherwise the parent's layer when the parent is in the same service; otherwise ``app`` for a span
    that ran in the cluster (any pod identity), ``client`` for a root outside it, ``unknown`` for the
    rest.

``hop_layer``
    Where the span's critical-path time goes. For every span but a CLIENT or PRODUCER span it is
    ``layer``. A call's uncovered time belongs to the hop it crosses (docs/design.md, "Layers"): ``db``
    for a database call; the caller's own layer for a call that itself makes calls (a wrapper: its
    own time is the caller's work); from the client, ``edge`` for the request (the call a traced
    server answered, a retry of it, a DNS lookup, or any call when no server answered at all) and
    ``external`` for its other calls; ``service`` from the ingress to a pod or between two pods;
    ``sidecar`` to a server in the same pod or over loopback; ``external`` for a call that leaves the
    traced system.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tracekit.analyze.model import SpanKind
from tracekit.analyze.processors.placement import (
    CLUSTER_SUFFIXES,
    in_cluster,
    is_loopback,
    peer_host,
    pod_identity,
    same_pod_identity,
    wire_same_pod,
)

if TYPE_CHECKING:
    from tracekit.analyze.processors import Options
    from tracekit.analyze.tree import SpanNode, SpanTree

# Enum members as module constants: looking one up on its class costs more than the test itself.
_SERVER = SpanKind.SERVER
_CLIENT = SpanKind.CLIENT
_PRODUCER = SpanKind.PRODUCER
_CALLS = frozenset((SpanKind.CLIENT, SpanKind.PRODUCER))
_UNSET: Any = object()


def _fallback(node: SpanNode) -> str:
    span = node.span
    parent = node.parent
    if parent is not None and parent.span.service == span.service:
        return parent.layer
    if in_cluster(span):
        return "app"
    if parent is None and span.kind != _SERVER:
        return "client"
    return "unknown"


def sidecar_server(tree: SpanTree, node: SpanNode) -> bool:
    """Is this SERVER span, called by its CLIENT parent, a server in the caller's pod?

    Pod identities that differ say no (several processes on one host share loopback: a local run).
    Identities that agree need the wire to agree too; when it says the call left the pod, the
    addresses win and the trace is warned once. When only one side has a pod identity, a loopback or
    unix socket call stayed in that pod; when neither has one, nothing is a pod (a sidecar needs one).
    """
    parent = node.parent
    assert parent is not None
    client = parent.span
    server = node.span
    client_pod = pod_identity(client)
    server_pod = pod_identity(server)
    if any(client_pod) and any(server_pod):
        if not same_pod_identity(client_pod, server_pod):
            return False
        wire = wire_same_pod(client, server)
        if wire:
            return True
        if wire is False and not tree.inconsistent_pods:
            tree.inconsistent_pods = True
            tree.warnings.append(
                f"span {tree.input_id(client.span_id)} ({client.service}) and span "
                f"{tree.input_id(server.span_id)} ({server.service}) carry the same pod identity but "
                f"the call went to {peer_host(client.attributes) or 'another address'}: the addresses are "
                "trusted (a collector associating spans by source IP behind a proxy gives two pods one "
                "identity)"
            )
        return False
    # One side without a pod identity: the wire decides, as long as the other side is in a pod (a
    # loopback call between processes that are not in Kubernetes at all is a call on one machine).
    return (any(client_pod) or any(server_pod)) and bool(wire_same_pod(client, server))


def wraps_calls(node: SpanNode) -> bool:
    """Does this call itself make calls (a CLIENT or PRODUCER child in its own service)?"""
    service = node.span.service
    return any(child.span.kind in _CALLS and child.span.service == service for child in node.children)


def remote_server(node: SpanNode) -> SpanNode | None:
    """The SERVER span a CLIENT span called, if the server sent one."""
    for child in node.children:
        if child.span.kind == _SERVER:
            return child
    return None


def _request_hosts(clients: list[SpanNode]) -> set[str | None] | None:
    """Hosts of the client's calls a traced server answered; None when no server answered any."""
    hosts: set[str | None] | None = None
    for node in clients:
        if node.layer == "client" and remote_server(node) is not None:
            if hosts is None:
                hosts = set()
            hosts.add(peer_host(node.span.attributes))
    return hosts


def hop_layer(node: SpanNode, clients: list[SpanNode], cache: list[Any]) -> str:
    """The hop a CLIENT or PRODUCER span crosses (see the module docstring).

    ``clients`` are the trace's calls; ``cache`` holds the hosts the client's request went to once a
    client call without an answer needed them (most traces never do).
    """
    own = node.layer
    if own == "db":
        return "db"
    if own == "ingress":
        return "service"
    server = remote_server(node)
    if server is None and node.children and wraps_calls(node):
        return own
    if own == "client":
        if server is not None:
            return "edge"
        attrs = node.span.attributes
        # A DNS lookup (dns.question.name) is the first step of the way in, whichever server answers.
        if "dns.question.name" in attrs:
            return "edge"
        if cache[0] is _UNSET:
            cache[0] = _request_hosts(clients)
        request_hosts = cache[0]
        if request_hosts is None or peer_host(attrs) in request_hosts:
            return "edge"
        return "external"  # the client's other calls: to backends no traced server answered for
    if server is not None:
        if server.layer == "sidecar":
            return "sidecar"
        if server.layer == "db":
            return "db"
        return "service"
    host = peer_host(node.span.attributes)
    if host is not None:
        if is_loopback(host) or host.startswith(("/", "unix:")):
            return "sidecar"
        if host.endswith(CLUSTER_SUFFIXES):
            return "service"
    return "external"


def classify_layers(tree: SpanTree, options: Options) -> SpanTree:
    """Set ``layer`` and ``hop_layer`` on every node (parents before children)."""
    classify = options.rules.classify
    client = _CLIENT
    server = _SERVER
    calls = _CALLS
    clients: list[SpanNode] = []
    add_client = clients.append
    ingress_servers = tree.ingress_servers
    for node in tree.order:  # parents before children: the fallback may copy the parent's layer
        span = node.span
        kind = span.kind
        layer = classify(span)
        if layer is None or layer == "app":
            parent = node.parent
            if (
                kind == server
                and parent is not None
                and parent.span.kind == client
                and sidecar_server(tree, node)
            ):
                layer = "sidecar"
            elif layer is None:
                layer = _fallback(node)
        node.layer = layer
        if layer == "ingress" and kind == server:
            ingress_servers.append(node)  # the diagnosis looks at these for answers without upstream
        if kind in calls:
            add_client(node)
        else:
            node.hop_layer = layer
    # Hop layers look at the server child's layer, so they come once every layer is known.
    cache: list[Any] = [_UNSET]
    for node in clients:
        node.hop_layer = hop_layer(node, clients, cache)
    return tree

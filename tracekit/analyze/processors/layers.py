"""Layer classification: which part of the journey emitted each span, and which hop a CLIENT crosses.

Two results per span (see :class:`~tracekit.analyze.tree.SpanNode`):

``layer``
    The component that emitted the span: the first matching rule of the rule table
    (:mod:`tracekit.analyze.rules`); a SERVER span called from its own pod (a CLIENT parent with the
    same ``k8s.pod.uid``/``k8s.pod.name``) is the sidecar; otherwise the parent's layer when the parent
    is in the same service; otherwise ``app`` for a span with Kubernetes attributes, ``client`` for a
    root without them, ``unknown`` for the rest.

``hop_layer``
    Where the span's critical-path time goes. For every span but a CLIENT span it is ``layer``. A
    CLIENT span's uncovered time belongs to the hop it crosses (docs/design.md): ``db`` for a database
    client span; ``edge`` from a client outside the cluster; ``service`` from the ingress to a pod
    (the Service/kube-proxy hop) or between two pods; ``sidecar`` to a server in the same pod or on
    localhost; ``external`` for a call that leaves the traced system (no server span, not a cluster
    address).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tracekit import attributes as a
from tracekit.analyze.model import Span, SpanKind

if TYPE_CHECKING:
    from tracekit.analyze.processors import Options
    from tracekit.analyze.tree import SpanNode, SpanTree

_LOCALHOST = frozenset({"localhost", "127.0.0.1", "::1", "[::1]", "0.0.0.0", "ip6-localhost"})
_CLUSTER_SUFFIXES = (".svc", ".svc.cluster.local", ".cluster.local", ".svc.cluster.local.")
_PEER_KEYS = ("server.address", "net.peer.name", "peer.service", "net.peer.ip", "network.peer.address")
_URL_KEYS = ("url.full", "http.url")
# Enum members as module constants: looking one up on its class costs more than the test itself.
_SERVER = SpanKind.SERVER
_CLIENT = SpanKind.CLIENT


def has_k8s(span: Span) -> bool:
    """Does the span say where in the cluster it ran?"""
    res = span.resource
    return a.K8S_POD_NAME in res or a.K8S_POD_UID in res or a.K8S_POD_NAME in span.attributes


PodIdentity = tuple[Any, Any, Any]
_POD_KEYS = (a.K8S_POD_UID, a.K8S_POD_NAME, a.K8S_NAMESPACE_NAME)
#: id(resource) -> (resource, identity): pod identities are per process, so cache them per resource
#: dict (kept referenced, so its id cannot be reused while cached).
_pod_cache: dict[int, tuple[Any, PodIdentity]] = {}


def pod_identity(span: Span) -> PodIdentity:
    """(pod uid, pod name, namespace) of the process that emitted the span (None where unknown)."""
    attrs = span.attributes
    if a.K8S_POD_NAME in attrs or a.K8S_POD_UID in attrs:
        return (span.attr(a.K8S_POD_UID), span.attr(a.K8S_POD_NAME), span.attr(a.K8S_NAMESPACE_NAME))
    res = span.resource
    hit = _pod_cache.get(id(res))
    if hit is not None and hit[0] is res:
        return hit[1]
    identity = (res.get(_POD_KEYS[0]), res.get(_POD_KEYS[1]), res.get(_POD_KEYS[2]))
    if len(_pod_cache) > 10_000:
        _pod_cache.clear()
    _pod_cache[id(res)] = (res, identity)
    return identity


def same_pod(x: Span, y: Span) -> bool:
    """Both spans ran in the same pod: same pod uid and/or same pod name and namespace.

    Both identities are compared when both spans carry them, so one colliding value (a copied uid)
    cannot merge two pods.
    """
    ux, nx, sx = pod_identity(x)
    uy, ny, sy = pod_identity(y)
    if ux and uy and ux != uy:
        return False
    if nx and ny and (nx != ny or sx != sy):
        return False
    return bool((ux and uy) or (nx and ny))


def peer_host(span: Span) -> str | None:
    """The host a CLIENT span called, from the old or current HTTP/network conventions."""
    attrs = span.attributes
    for key in _PEER_KEYS:
        value = attrs.get(key)
        if value:
            return str(value).lower()
    for key in _URL_KEYS:
        value = attrs.get(key)
        if value:
            try:
                host = urlsplit(str(value)).hostname
            except ValueError:
                host = None
            if host:
                return host.lower()
    return None


def _fallback(node: SpanNode) -> str:
    span = node.span
    parent = node.parent
    if parent is not None and parent.span.service == span.service:
        return parent.layer
    if has_k8s(span):
        return "app"
    if parent is None and span.kind != _SERVER:
        return "client"
    return "unknown"


def hop_layer(node: SpanNode) -> str:
    """The hop a CLIENT span crosses (see the module docstring)."""
    span = node.span
    own = node.layer
    attrs = span.attributes
    if own == "db" or "db.system" in attrs or "db.system.name" in attrs:
        return "db"
    if own == "client":
        return "edge"
    if own == "ingress":
        return "service"
    server = remote_server(node)
    if server is not None:
        if server.layer == "sidecar" or same_pod(span, server.span):
            return "sidecar"
        if server.layer == "db":
            return "db"
        return "service"
    host = peer_host(span)
    if host is not None:
        if host in _LOCALHOST:
            return "sidecar"
        if host.endswith(_CLUSTER_SUFFIXES):
            return "service"
    return "external"


def remote_server(node: SpanNode) -> SpanNode | None:
    """The SERVER span a CLIENT span called, if the server sent one."""
    for child in node.children:
        if child.span.kind == _SERVER:
            return child
    return None


def classify_layers(tree: SpanTree, options: Options) -> SpanTree:
    """Set ``layer`` and ``hop_layer`` on every node (parents before children)."""
    classify = options.rules.classify
    client = _CLIENT
    server = _SERVER
    clients: list[SpanNode] = []
    add_client = clients.append
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
                and same_pod(span, parent.span)
            ):
                layer = "sidecar"
            elif layer is None:
                layer = _fallback(node)
        node.layer = layer
        if kind == client:
            add_client(node)
        else:
            node.hop_layer = layer
    # Hop layers look at the server child's layer, so they come once every layer is known.
    for node in clients:
        node.hop_layer = hop_layer(node)
    return tree

"""Where a span ran and where its call went: cluster membership, pod identity, the peer it called.

The rules (docs/design.md, "Where a span ran"):

- **Cluster membership.** A span ran in the cluster when its process carries any pod identity: a
  ``k8s.pod.*`` key (name, uid, IP...) or another ``k8s.*`` resource key naming where it ran
  (namespace, node, container, workload). ``k8s.cluster.*`` alone does not count: collectors stamp it
  on everything they receive, outside clients included. The k8sattributes processor often knows a
  pod by its IP only (``k8s.pod.ip``, with ``host.name`` the pod name), so the IP is enough.
- **Same pod.** Only the wire proves that a call stayed inside a pod: the client called a loopback
  address or a unix socket, or the address it called is its own pod IP (:func:`wire_same_pod`). Pod
  identity (the same ``k8s.pod.uid``) is what a collector *associated* with the spans, and a collector
  associating by the connection's source IP behind a proxy gives two pods one identity; so identity
  alone never makes a sidecar, and when it says "same pod" while the addresses say otherwise, the
  addresses win and the trace gets one warning.
- **The peer.** The host a CLIENT span called, from the current and older OpenTelemetry names, the
  OpenTracing/Zipkin ``peer.*`` tags and the URL (:func:`peer_host`). Renderers use this function
  too, so the report and the analysis never disagree about whom a span called.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from tracekit import attributes as a
from tracekit.analyze.model import Span

LOCALHOST = frozenset({"localhost", "127.0.0.1", "::1", "[::1]", "0.0.0.0", "ip6-localhost"})
CLUSTER_SUFFIXES = (".svc", ".svc.cluster.local", ".cluster.local", ".svc.cluster.local.")
#: Where the host a client called is written, most specific first (current, then older conventions,
#: then OpenTracing/Zipkin's ``peer.*`` tags).
PEER_KEYS = (
    "server.address",
    "net.peer.name",
    "peer.hostname",
    "peer.service",
    "http.host",
    "network.peer.address",
    "net.sock.peer.addr",
    "net.peer.ip",
    "peer.ipv4",
    "peer.ipv6",
)
URL_KEYS = ("url.full", "http.url")
#: The socket-level address a span's connection went to or came from (never a forwarded header).
SOCKET_PEER_KEYS = ("network.peer.address", "net.sock.peer.addr", "net.peer.ip", "peer.ipv4", "peer.ipv6")
#: The address the process itself had: its pod IP, its host IP (Zipkin's local endpoint), the socket.
OWN_ADDRESS_KEYS = (a.K8S_POD_IP, "host.ip", "network.local.address", "net.sock.host.addr", "net.host.ip")
#: A unix-domain socket: the call cannot have left the machine, and in Kubernetes not the pod.
UNIX_TRANSPORTS = frozenset({"unix", "pipe"})

PodIdentity = tuple[Any, Any, Any, Any]
_POD_KEYS = (a.K8S_POD_UID, a.K8S_POD_NAME, a.K8S_NAMESPACE_NAME, a.K8S_POD_IP)
_POD_KEY_SET = frozenset(_POD_KEYS)
#: id(resource) -> (resource, identity, in cluster): pod identities are per process, so they are cached
#: per resource dict (kept referenced, so its id cannot be reused while cached).
_pod_cache: dict[int, tuple[Any, PodIdentity, bool]] = {}


def _resource_facts(res: dict[str, Any]) -> tuple[PodIdentity, bool]:
    hit = _pod_cache.get(id(res))
    if hit is not None and hit[0] is res:
        return hit[1], hit[2]
    identity: PodIdentity = (
        res.get(_POD_KEYS[0]),
        res.get(_POD_KEYS[1]),
        res.get(_POD_KEYS[2]),
        res.get(_POD_KEYS[3]),
    )
    in_cluster = any(k.startswith("k8s.") and not k.startswith("k8s.cluster.") for k in res)
    if len(_pod_cache) > 10_000:
        _pod_cache.clear()
    _pod_cache[id(res)] = (res, identity, in_cluster)
    return identity, in_cluster


def in_cluster(span: Span) -> bool:
    """Did the span run in the cluster? (Any pod identity; see the module docstring.)"""
    if _resource_facts(span.resource)[1]:
        return True
    attrs = span.attributes
    return bool(attrs) and not _POD_KEY_SET.isdisjoint(attrs)


def pod_identity(span: Span) -> PodIdentity:
    """(pod uid, pod name, namespace, pod IP) of the process that emitted the span (None where unknown)."""
    attrs = span.attributes
    if attrs and not _POD_KEY_SET.isdisjoint(attrs):
        return tuple(span.attr(k) for k in _POD_KEYS)
    return _resource_facts(span.resource)[0]


def same_pod_identity(x: PodIdentity, y: PodIdentity) -> bool:
    """Do two spans' pod identities (:func:`pod_identity`) say one pod? (What a collector associated;
    not proof.) Every part both carry must agree, so one colliding value (a copied uid) cannot merge
    two pods."""
    ux, nx, sx, ix = x
    uy, ny, sy, iy = y
    if ux and uy and ux != uy:
        return False
    if nx and ny and (nx != ny or sx != sy):
        return False
    if ix and iy and ix != iy:
        return False
    return bool((ux and uy) or (nx and ny) or (ix and iy))


def _host_of_url(value: Any) -> str | None:
    try:
        host = urlsplit(str(value)).hostname
    except ValueError:
        return None
    return host.lower() if host else None


def peer_host(attrs: Mapping[str, Any]) -> str | None:
    """The host a CLIENT span called (lowercase), from its attributes; None when none is written."""
    for key in PEER_KEYS:
        value = attrs.get(key)
        if value:
            return str(value).lower()
    for key in URL_KEYS:
        value = attrs.get(key)
        if value:
            host = _host_of_url(value)
            if host:
                return host
    return None


def is_loopback(host: str) -> bool:
    """A loopback name or address (the whole 127.0.0.0/8, ::1, localhost)."""
    return host in LOCALHOST or host.startswith("127.") or host == "::1"


def _is_unix(attrs: Mapping[str, Any]) -> bool:
    transport = attrs.get("network.transport") or attrs.get("net.transport")
    if transport is not None and str(transport).lower() in UNIX_TRANSPORTS:
        return True
    address = attrs.get("server.address") or attrs.get("network.peer.address")
    return address is not None and str(address).startswith(("/", "unix:"))


def _own_addresses(span: Span) -> set[str]:
    out = set()
    for key in OWN_ADDRESS_KEYS:
        value = span.attr(key)
        if value:
            out.add(_address(value))
    return out


#: The keys of :data:`PEER_KEYS` that hold an address (``peer.service`` is a logical name, not one).
WIRE_KEYS = tuple(k for k in PEER_KEYS if k != "peer.service")


def _address(value: Any) -> str:
    """An address as written, lowercase, without a URL around it or a port after it."""
    text = str(value).lower()
    if "://" in text:
        return _host_of_url(text) or text
    if text.count(":") == 1:
        text = text.split(":", 1)[0]
    return text.strip("[]")


def wire_same_pod(client: Span, server: Span | None) -> bool | None:
    """What the wire says about a call staying in its pod: True (loopback, unix socket, the caller's own
    address), False (an address outside the pod), None (no address written on either side)."""
    attrs = client.attributes
    if _is_unix(attrs):
        return True
    called = [_address(attrs[k]) for k in (*WIRE_KEYS, *URL_KEYS) if attrs.get(k)]
    seen_from_server: list[str] = []
    if server is not None:
        sattrs = server.attributes
        if _is_unix(sattrs):
            return True
        seen_from_server = [_address(sattrs[k]) for k in SOCKET_PEER_KEYS if sattrs.get(k)]
    if not called and not seen_from_server:
        return None
    if any(is_loopback(host) for host in (*called, *seen_from_server)):
        return True
    own = _own_addresses(client)
    if own and not own.isdisjoint(called):
        return True
    if server is not None and seen_from_server:
        server_own = _own_addresses(server)
        if server_own and not server_own.isdisjoint(seen_from_server):
            return True
    return False

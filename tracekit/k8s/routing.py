"""Which Ingress rule or HTTPRoute would route a request (host, path) to a Service: pure functions.

Everything here works on plain Kubernetes JSON dicts (camelCase, as the API and YAML give them) and
does no I/O, so the same code serves the background watch (``watch.py``), the cluster kit and tests.

Semantics follow the specs, since users compare our attributes with what their controller does:

* **Ingress** (``networking.k8s.io/v1``): ``Exact`` compares the whole path; ``Prefix`` compares path
  elements split by ``/`` (``/foo`` matches ``/foo`` and ``/foo/bar``, not ``/foobar``; a trailing slash
  is ignored). The longest matching path wins; at equal length ``Exact`` beats ``Prefix``.
  ``ImplementationSpecific`` is treated as ``Prefix`` (what ingress-nginx and Traefik do without regex
  annotations). A wildcard host ``*.example.com`` matches exactly one DNS label (``a.example.com``, not
  ``example.com`` nor ``a.b.example.com``). Hosts are tried most specific first: exact host, then
  wildcard, then rules without a host; the first tier with a matching path wins. If nothing matches,
  an Ingress ``defaultBackend`` is the match (``default_backend=True``).
* **HTTPRoute** (``gateway.networking.k8s.io/v1``): hostnames (a ``*.`` wildcard is a suffix match of one
  or more labels, as the Gateway API says), ``Exact`` and ``PathPrefix`` path matches (element-wise),
  precedence by exact hostname, then wildcard hostname, then Exact path, then longest prefix, then the
  oldest route and ``namespace/name``. Header, query and method conditions cannot be seen from (host,
  path) and are not evaluated; ``RegularExpression`` paths are skipped.

Among several Ingresses or routes at equal precedence the oldest (``creationTimestamp``), then
``namespace/name`` wins, as the Gateway API prescribes and most Ingress controllers do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tracekit import attributes as a

Obj = Mapping[str, Any]

_EXACT_FIRST = {"Exact": 0, "Prefix": 1, "ImplementationSpecific": 1, "PathPrefix": 1}


@dataclass(frozen=True)
class RouteMatch:
    """The Ingress rule or HTTPRoute rule that routes a request, and the Service it targets."""

    kind: str  # "Ingress" | "HTTPRoute"
    name: str
    namespace: str | None
    #: The rule's host or route hostname that matched (may be a wildcard); None for a catch-all.
    host: str | None
    #: The rule's path (None for an Ingress defaultBackend).
    path: str | None
    path_type: str | None
    service_name: str | None
    #: Port number, or port name when the backend names it.
    service_port: int | str | None
    #: The Gateway an HTTPRoute attaches to (first parentRef); None for Ingress.
    gateway: str | None
    default_backend: bool
    #: spec.ingressClassName of an Ingress (None when unset or for HTTPRoute).
    ingress_class: str | None = None


# --- small helpers ---------------------------------------------------------------------------


def normalize_host(host: str | None) -> str:
    """Lower-case a Host header value and strip its port and a trailing dot (``[::1]:80`` -> ``[::1]``)."""
    if not host:
        return ""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        host = host[: end + 1] if end != -1 else host
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def _prefix_matches(rule_path: str, path: str) -> bool:
    """Element-wise prefix match: ``/foo`` matches ``/foo``, ``/foo/``, ``/foo/bar`` but not ``/foobar``."""
    base = rule_path.rstrip("/")
    if not base:
        return True
    return path == base or path.startswith(base + "/")


def _path_matches(path_type: str, rule_path: str, path: str) -> bool:
    if path_type == "Exact":
        return path == rule_path
    return _prefix_matches(rule_path, path)


def _rank_length(path_type: str, rule_path: str) -> int:
    # A Prefix path's trailing slash does not make it more specific (/foo/ == /foo).
    return len(rule_path) if path_type == "Exact" else len(rule_path.rstrip("/"))


def _age_key(obj: Obj) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return (str(meta.get("creationTimestamp") or ""), str(meta.get("namespace") or ""), str(meta.get("name")))


def _wildcard_suffix(pattern: str, host: str) -> bool:
    """Gateway API wildcard: ``*.example.com`` matches one or more extra labels."""
    suffix = pattern[1:]
    return host.endswith(suffix) and len(host) > len(suffix)


def _backend_service(backend: Obj | None) -> tuple[str | None, int | str | None]:
    service = (backend or {}).get("service") or {}
    port = service.get("port") or {}
    return service.get("name"), port.get("number", port.get("name"))


# --- Ingress ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _IngressPath:
    rank: tuple[int, int, int]  # (-length, exact-first, ingress order): ascending sort = precedence
    path_type: str
    path: str
    match: RouteMatch


class IngressTable:
    """Ingress rules compiled for fast lookup: paths pre-sorted by precedence per host tier."""

    def __init__(self, ingresses: Iterable[Obj]) -> None:
        self._exact: dict[str, list[_IngressPath]] = {}
        self._wildcard: dict[str, list[_IngressPath]] = {}  # keyed by ".example.com"
        self._any: list[_IngressPath] = []
        self._default: RouteMatch | None = None
        for order, ing in enumerate(sorted(ingresses, key=_age_key)):
            meta = ing.get("metadata") or {}
            spec = ing.get("spec") or {}
            name, namespace = str(meta.get("name")), meta.get("namespace")
            klass = spec.get("ingressClassName")
            if self._default is None and spec.get("defaultBackend"):
                svc, port = _backend_service(spec["defaultBackend"])
                self._default = RouteMatch(
                    "Ingress", name, namespace, None, None, None, svc, port, None, True, klass
                )
            for rule in spec.get("rules") or []:
                host = (rule.get("host") or "").lower() or None
                for p in (rule.get("http") or {}).get("paths") or []:
                    path_type = p.get("pathType") or "ImplementationSpecific"
                    path = p.get("path") or "/"
                    svc, port = _backend_service(p.get("backend"))
                    match = RouteMatch(
                        "Ingress", name, namespace, host, path, path_type, svc, port, None, False, klass
                    )
                    entry = _IngressPath(
                        (-_rank_length(path_type, path), _EXACT_FIRST.get(path_type, 1), order),
                        path_type,
                        path,
                        match,
                    )
                    if host is None:
                        self._any.append(entry)
                    elif host.startswith("*."):
                        self._wildcard.setdefault(host[1:], []).append(entry)
                    else:
                        self._exact.setdefault(host, []).append(entry)
        for entries in (*self._exact.values(), *self._wildcard.values(), self._any):
            entries.sort(key=lambda e: e.rank)

    def resolve(self, host: str, path: str) -> RouteMatch | None:
        host = normalize_host(host)
        dot = host.find(".")
        tiers = (
            self._exact.get(host),
            # One-label wildcard: "a.example.com" looks up ".example.com".
            self._wildcard.get(host[dot:]) if dot > 0 else None,
            self._any,
        )
        for entries in tiers:
            for entry in entries or ():
                if _path_matches(entry.path_type, entry.path, path):
                    return entry.match
        return self._default


def resolve_ingress(ingresses: Iterable[Obj], host: str, path: str) -> RouteMatch | None:
    """Return the Ingress rule (or defaultBackend) that routes ``host`` + ``path``, or None."""
    return IngressTable(ingresses).resolve(host, path)


# --- HTTPRoute -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RoutePath:
    rank: tuple[int, int, int, int]  # (exact-first, -length, route order, rule order)
    path_type: str
    path: str
    hostname: str | None
    name: str
    namespace: str | None
    service_name: str | None
    service_port: int | str | None
    gateway: str | None


def _route_backend(rule: Obj) -> tuple[str | None, int | str | None]:
    """The Service a rule sends most traffic to: the heaviest Service backendRef (first on ties)."""
    best: tuple[int, str | None, int | str | None] | None = None
    for ref in rule.get("backendRefs") or []:
        if (ref.get("kind") or "Service") != "Service" or (ref.get("group") or "") != "":
            continue
        weight = int(ref.get("weight", 1))
        if best is None or weight > best[0]:
            best = (weight, ref.get("name"), ref.get("port"))
    return (best[1], best[2]) if best else (None, None)


def _route_gateway(route: Obj) -> str | None:
    route_ns = (route.get("metadata") or {}).get("namespace")
    for ref in (route.get("spec") or {}).get("parentRefs") or []:
        if (ref.get("kind") or "Gateway") != "Gateway":
            continue
        ns = ref.get("namespace")
        return f"{ns}/{ref.get('name')}" if ns and ns != route_ns else ref.get("name")
    return None


class HTTPRouteTable:
    """HTTPRoute rules compiled for lookup, pre-sorted by the Gateway API precedence."""

    def __init__(self, routes: Iterable[Obj]) -> None:
        self._entries: list[tuple[str | None, _RoutePath]] = []
        for order, route in enumerate(sorted(routes, key=_age_key)):
            meta = route.get("metadata") or {}
            spec = route.get("spec") or {}
            gateway = _route_gateway(route)
            hostnames = [h.lower() for h in spec.get("hostnames") or []] or [None]
            for rule_no, rule in enumerate(spec.get("rules") or [{}]):
                svc, port = _route_backend(rule)
                for m in rule.get("matches") or [{}]:
                    path_spec = m.get("path") or {}
                    path_type = path_spec.get("type") or "PathPrefix"
                    if path_type not in ("Exact", "PathPrefix"):
                        continue  # RegularExpression: implementation-specific, not evaluated
                    path = path_spec.get("value") or "/"
                    for hostname in hostnames:
                        entry = _RoutePath(
                            (_EXACT_FIRST[path_type], -_rank_length(path_type, path), order, rule_no),
                            path_type,
                            path,
                            hostname,
                            str(meta.get("name")),
                            meta.get("namespace"),
                            svc,
                            port,
                            gateway,
                        )
                        self._entries.append((hostname, entry))

    def _host_rank(self, hostname: str | None, host: str) -> tuple[int, int] | None:
        if hostname is None:
            return (2, 0)
        if hostname.startswith("*."):
            return (1, -len(hostname)) if _wildcard_suffix(hostname, host) else None
        return (0, -len(hostname)) if hostname == host else None

    def resolve(self, host: str, path: str) -> RouteMatch | None:
        host = normalize_host(host)
        best: tuple[tuple[int, int], tuple[int, int, int, int], _RoutePath] | None = None
        for hostname, entry in self._entries:
            host_rank = self._host_rank(hostname, host)
            if host_rank is None or not _path_matches(entry.path_type, entry.path, path):
                continue
            key = (host_rank, entry.rank)
            if best is None or key < best[:2]:
                best = (host_rank, entry.rank, entry)
        if best is None:
            return None
        e = best[2]
        return RouteMatch(
            "HTTPRoute", e.name, e.namespace, e.hostname, e.path, e.path_type, e.service_name,
            e.service_port, e.gateway, False,
        )  # fmt: skip


def resolve_httproute(routes: Iterable[Obj], host: str, path: str) -> RouteMatch | None:
    """Return the HTTPRoute rule that routes ``host`` + ``path``, or None."""
    return HTTPRouteTable(routes).resolve(host, path)


# --- Services --------------------------------------------------------------------------------


def service_selects(service: Obj, pod_labels: Mapping[str, str]) -> bool:
    """True when the Service's selector selects a pod with ``pod_labels``.

    A Service without a selector (or an ExternalName Service) selects no pod by itself: its endpoints
    are managed by hand, so we answer False rather than guess.
    """
    spec = service.get("spec") or {}
    selector = spec.get("selector") or {}
    if not selector or spec.get("type") == "ExternalName":
        return False
    return all(pod_labels.get(k) == v for k, v in selector.items())


def resolve_service_port(service: Obj | None, port: int | str | None) -> int | str | None:
    """Turn a named Service port into its number when the Service is known; numbers pass through."""
    if isinstance(port, str) and service:
        for p in (service.get("spec") or {}).get("ports") or []:
            if p.get("name") == port and "port" in p:
                return int(p["port"])
    return port


# --- The per-request table -------------------------------------------------------------------

Attributes = Mapping[str, str | bool | int]

#: Lookups cached per table; bounded so that random hosts/paths cannot grow memory without limit.
_CACHE_LIMIT = 4096


class RoutingTable:
    """An immutable snapshot of routing state, compiled once per change, looked up per request.

    ``attributes(host, path)`` returns the span attributes for a request. Results are cached per
    (host, path) for the lifetime of the table: a new snapshot gets a new table and so a fresh cache.
    """

    def __init__(
        self,
        ingresses: Iterable[Obj] = (),
        routes: Iterable[Obj] = (),
        services: Iterable[Obj] = (),
        pod_labels: Mapping[str, str] | None = None,
    ) -> None:
        self.ingresses = IngressTable(ingresses)
        self.routes = HTTPRouteTable(routes)
        self.services = {str((s.get("metadata") or {}).get("name")): s for s in services}
        self.pod_labels = pod_labels
        self._cache: dict[tuple[str, str], Attributes] = {}

    def attributes(self, host: str, path: str) -> Attributes:
        key = (host, path)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        attrs = self._compute(host, path)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = attrs
        return attrs

    def _selects(self, match: RouteMatch | None) -> bool | None:
        if match is None or match.service_name is None or self.pod_labels is None:
            return None
        service = self.services.get(match.service_name)
        return None if service is None else service_selects(service, self.pod_labels)

    def _compute(self, host: str, path: str) -> Attributes:
        ing = self.ingresses.resolve(host, path)
        route = self.routes.resolve(host, path)
        attrs: dict[str, str | bool | int] = {a.ROUTE_MATCHED: ing is not None or route is not None}
        if ing is not None:
            attrs[a.INGRESS_NAME] = ing.name
            if ing.default_backend:  # absent means false: one attribute less on every request
                attrs[a.INGRESS_DEFAULT_BACKEND] = True
            if ing.ingress_class:
                attrs[a.INGRESS_CLASS] = ing.ingress_class
            if ing.host:
                attrs[a.INGRESS_RULE_HOST] = ing.host
            if ing.path is not None:
                attrs[a.INGRESS_RULE_PATH] = ing.path
                attrs[a.INGRESS_RULE_PATH_TYPE] = str(ing.path_type)
        if route is not None:
            attrs[a.HTTPROUTE_NAME] = route.name
            if route.host:
                attrs[a.HTTPROUTE_HOSTNAME] = route.host
            attrs[a.HTTPROUTE_PATH] = str(route.path)
            attrs[a.HTTPROUTE_PATH_TYPE] = str(route.path_type)
            if route.gateway:
                attrs[a.GATEWAY_NAME] = route.gateway
        # One backend Service per request: the one that selects this pod, preferring the Ingress.
        candidates = [m for m in (ing, route) if m is not None and m.service_name]
        selects = {id(m): self._selects(m) for m in candidates}
        chosen = next((m for m in candidates if selects[id(m)]), candidates[0] if candidates else None)
        if chosen is not None:
            attrs[a.BACKEND_SERVICE_NAME] = str(chosen.service_name)
            port = resolve_service_port(self.services.get(str(chosen.service_name)), chosen.service_port)
            if port is not None:
                attrs[a.BACKEND_SERVICE_PORT] = port
            if selects[id(chosen)] is not None:
                attrs[a.BACKEND_SELECTS_POD] = bool(selects[id(chosen)])
        return attrs

"""Caddy as the ingress controller: its JSON configuration translated from Ingress objects.

An ingress controller watches Ingress objects and turns each rule into its proxy's own configuration;
this module does that translation once, for Caddy (``caddy run --config``), the way the Kubernetes
Ingress specification says the rules match:

- a rule's ``host`` matches the request's Host exactly (a ``*.example.com`` wildcard matches one label);
  a rule without a host matches every host;
- ``pathType: Exact`` matches the path exactly; ``Prefix`` (and ``ImplementationSpecific``, which this
  controller reads as Prefix) matches element-wise: ``/api`` matches ``/api`` and ``/api/x`` but not
  ``/apix``; the longest path wins, and Exact wins over Prefix for the same path;
- the backend is the Service's ClusterIP and port (kube-proxy's rules pick the pod, as with
  ingress-nginx's ``service-upstream``); a request no rule matches gets the ``defaultBackend`` or a 404
  from the controller itself, as ingress-nginx's default backend answers.

Every request goes through Caddy's ``tracing`` handler (OpenTelemetry, W3C trace context in and out),
so Caddy emits one SERVER span per request: the hop to the pod happens inside that span.
"""

from __future__ import annotations

from typing import Any

#: The span name Caddy gives its request spans (placeholders are Caddy's).
SPAN_NAME = "{http.request.method}"
#: How an error (no upstream answered: 502, 504...) is answered: its status, as Caddy's default does.
_ERROR_ANSWER: dict[str, Any] = {
    "handler": "static_response",
    "status_code": "{http.error.status_code}",
    "body": "{http.error.status_code} {http.error.status_text}\n",
}


class TranslationError(ValueError):
    """An Ingress the controller cannot serve (a backend Service or port that does not exist)."""


def _service_address(services: list[dict[str, Any]], namespace: str, backend: dict[str, Any]) -> str:
    svc_ref = backend.get("service") or {}
    name = svc_ref.get("name")
    port_ref = svc_ref.get("port") or {}
    for svc in services:
        meta = svc.get("metadata") or {}
        if meta.get("name") != name or meta.get("namespace", namespace) != namespace:
            continue
        spec = svc.get("spec") or {}
        for port in spec.get("ports") or []:
            if port_ref.get("number") in (port.get("port"),) or port_ref.get("name") == port.get("name"):
                if not spec.get("clusterIP"):
                    raise TranslationError(f"Service {name!r} has no clusterIP")
                return f"{spec['clusterIP']}:{port['port']}"
        raise TranslationError(f"Service {name!r} has no port {port_ref}")
    raise TranslationError(f"backend Service {name!r} not found in namespace {namespace!r}")


def _path_match(path: str, path_type: str) -> list[str]:
    if path_type == "Exact":
        return [path]
    base = path.rstrip("/")
    return [f"{base}/*"] if not base else [base, f"{base}/*"]


def _proxy(upstream: str) -> dict[str, Any]:
    return {
        "handler": "reverse_proxy",
        "upstreams": [{"dial": upstream}],
        # One connection per request: kube-proxy's rules pick an endpoint per connection, so a pooled
        # connection would pin Caddy to one pod (a known effect of keep-alive through a ClusterIP).
        "transport": {"protocol": "http", "keep_alive": {"enabled": False}},
    }


def routes(ingresses: list[dict[str, Any]], services: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Caddy routes for the Ingress rules, most specific first, then the default backend or a 404."""
    candidates: list[tuple[tuple[int, int, int], dict[str, Any]]] = []
    default: dict[str, Any] | None = None
    for ing in ingresses:
        namespace = (ing.get("metadata") or {}).get("namespace", "default")
        spec = ing.get("spec") or {}
        if spec.get("defaultBackend") and default is None:
            default = _proxy(_service_address(services, namespace, spec["defaultBackend"]))
        for rule in spec.get("rules") or []:
            host = rule.get("host")
            for entry in (rule.get("http") or {}).get("paths") or []:
                path = entry.get("path") or "/"
                path_type = entry.get("pathType") or "ImplementationSpecific"
                match: dict[str, Any] = {"path": _path_match(path, path_type)}
                if host:
                    match["host"] = [host]
                route = {
                    "match": [match],
                    "handle": [_proxy(_service_address(services, namespace, entry.get("backend") or {}))],
                    "terminal": True,
                }
                # Host rules before host-less ones, longer paths first, Exact before Prefix.
                rank = (0 if host else 1, -len(path), 0 if path_type == "Exact" else 1)
                candidates.append((rank, route))
    ordered = [route for _, route in sorted(candidates, key=lambda c: c[0])]
    fallback = default or {
        "handler": "static_response",
        "status_code": 404,
        "body": "404 Not Found: no Ingress rule matches\n",
    }
    return [*ordered, {"handle": [fallback], "terminal": True}]


def config(
    ingresses: list[dict[str, Any]], services: list[dict[str, Any]], listen: str, storage: str
) -> dict[str, Any]:
    """The whole Caddy configuration: one HTTP server on ``listen``, traced, no admin API, no TLS."""
    return {
        "admin": {"disabled": True},
        "logging": {"logs": {"default": {"level": "WARN"}}},
        "storage": {"module": "file_system", "root": storage},
        "apps": {
            "http": {
                "servers": {
                    "ingress": {
                        "listen": [listen],
                        "automatic_https": {"disable": True},
                        "routes": [
                            {"handle": [{"handler": "tracing", "span": SPAN_NAME}]},
                            # Caddy turns a handler's error (an upstream that refused: 502) into
                            # the response after the tracing span has ended, so the span would say
                            # 200; a subroute answers its own errors inside the span instead.
                            {
                                "handle": [
                                    {
                                        "handler": "subroute",
                                        "routes": routes(ingresses, services),
                                        "errors": {"routes": [{"handle": [_ERROR_ANSWER]}]},
                                    }
                                ]
                            },
                        ],
                    }
                }
            }
        },
    }

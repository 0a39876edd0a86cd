"""The hooks tracekit hands to the OpenTelemetry Flask and requests instrumentations.

* The server request hook adds the routing attributes (which Ingress rule / HTTPRoute / Service routes
  this request here) to the SERVER span: one attribute read of the current routing table and an
  in-memory lookup cached per (host, path), so the request never waits on the Kubernetes API.
* The server response hook and the client request hook redact secret query values in URL attributes;
  they run after the instrumentations set those attributes (see ``redact.py``).

These run on every request, so they are written for speed: the request hook decides once whether the
query string holds a secret at all, and the response hook does nothing for the (usual) other requests.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, Protocol

from tracekit.k8s.routing import RoutingTable
from tracekit.tracing.redact import has_secret_key, redact_span_urls

RequestHook = Callable[[Any, dict[str, Any]], None]
ResponseHook = Callable[[Any, str, list[tuple[str, str]]], None]


class RoutingSource(Protocol):
    """Anything with a current ``table`` (the watch, or a fixed table in tests and benchmarks)."""

    table: RoutingTable


class StaticRouting:
    """A fixed routing table (no cluster, or a test)."""

    def __init__(self, table: RoutingTable) -> None:
        self.table = table


def request_host(environ: dict[str, Any]) -> str:
    """The host the client asked for: the first ``X-Forwarded-Host`` (set by proxies) or ``Host``."""
    forwarded = environ.get("HTTP_X_FORWARDED_HOST")
    if forwarded:
        return forwarded.split(",", 1)[0].strip()
    return environ.get("HTTP_HOST") or environ.get("SERVER_NAME") or ""


def make_server_hooks(
    routing: RoutingSource | None,
    query_keys: frozenset[str],
    *,
    then_request: Callable[..., Any] | None = None,
    then_response: Callable[..., Any] | None = None,
) -> tuple[RequestHook, ResponseHook]:
    """Build the Flask ``request_hook`` and ``response_hook`` (user hooks ``then_*`` run afterwards)."""
    # Spans whose query string holds a secret key: the response hook redacts only these.
    to_redact: weakref.WeakSet[Any] = weakref.WeakSet()

    def server_request_hook(span: Any, environ: dict[str, Any]) -> None:
        if span is not None and span.is_recording():
            if routing is not None:
                path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
                span.set_attributes(routing.table.attributes(request_host(environ), path or "/"))
            query = environ.get("QUERY_STRING")
            if query and has_secret_key(query, query_keys):
                to_redact.add(span)
        if then_request is not None:
            then_request(span, environ)

    def server_response_hook(span: Any, status: str, response_headers: list[tuple[str, str]]) -> None:
        if span is not None and span in to_redact:
            to_redact.discard(span)
            redact_span_urls(span, query_keys)
        if then_response is not None:
            then_response(span, status, response_headers)

    return server_request_hook, server_response_hook


def make_client_request_hook(
    query_keys: frozenset[str], then: Callable[..., Any] | None = None
) -> Callable[[Any, Any], None]:
    """Build the requests ``request_hook`` that redacts URL attributes of the CLIENT span."""

    def client_request_hook(span: Any, request: Any) -> None:
        if span is not None and span.is_recording():
            url = getattr(request, "url", None) or ""
            if "?" in url and has_secret_key(url.partition("?")[2], query_keys):
                redact_span_urls(span, query_keys)
        if then is not None:
            then(span, request)

    return client_request_hook

"""Diagnosis: did the request fail, and in which layer did it break?

A request has failed when its root span ends in error (status ERROR, an HTTP status >= 500 in the old
``http.status_code`` or current ``http.response.status_code`` key, an exception event, ``error.type``,
an Envoy failure ``response_flags``), or when an ingress answered 404/503 without calling upstream.

A request was *rejected* when its root did not fail but answered (or got) a 4xx status: the caller got
an error status, so the trace counts as an error trace, with ``outcome`` "rejected" and ``kind``
"rejected" (or "no-route" for an ingress 404 without an upstream call); a failure has ``outcome``
"failed".

The origin is the deepest failing span reachable from the root through failing spans and through the
spans the failure passed through (a span that did not fail and gave no answer of its own: a proxy's
INTERNAL routing spans, such as Traefik's Router and Service, or any wrapper); ties go to the one that
ended last. For a rejection, spans that answered 4xx join the chain too. When the root did not fail
itself but an ingress answered 404/503 without an upstream call (no CLIENT span under it, whatever
INTERNAL spans it traced), that ingress span is the origin. Its layer, with the hop rules, is the
``failed_layer`` (the table is in docs/analyzer.md):

- a CLIENT span whose server sent no failing span: the hop it crosses (``edge``: the client never
  reached the cluster; ``service``: no ready endpoints / connection refused with no pod span;
  ``sidecar``: the app could not reach its sidecar; ``db``; ``external``);
- an ingress span that answered 404 without an upstream call: ``ingress`` (no rule matched); 502, 503
  or 504 without an upstream call: ``service`` (no ready endpoints);
- an Envoy span with ``response_flags`` UH, UF, URX, UO, UT, UC, LH...: ``service``; NR: ``ingress``;
- otherwise the layer of the span that failed (``app``, ``sidecar``, ``db``...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tracekit.analyze.model import SpanKind, StatusCode

if TYPE_CHECKING:
    from tracekit.analyze.processors import Options
    from tracekit.analyze.tree import SpanNode, SpanTree

_STATUS_KEYS = ("http.response.status_code", "http.status_code")
_SERVER = SpanKind.SERVER
_CLIENT = SpanKind.CLIENT
_OK = StatusCode.OK

#: Envoy response flags -> (layer, plain words); the flags are listed in Envoy's access-log docs
#: (configuration/observability/access_log/usage, "%RESPONSE_FLAGS%").
ENVOY_FLAGS: dict[str, tuple[str, str]] = {
    "UH": ("service", "no healthy upstream (no ready endpoints)"),
    "UF": ("service", "upstream connection failure"),
    "URX": ("service", "upstream retry limit exceeded"),
    "UO": ("service", "upstream overflow (circuit breaker open)"),
    "UT": ("service", "upstream request timeout"),
    "UC": ("service", "upstream connection terminated"),
    "UR": ("service", "upstream reset the connection"),
    "LH": ("service", "upstream failed its health check"),
    "NC": ("service", "no upstream cluster"),
    "NR": ("ingress", "no route configured for the request"),
    "DC": ("edge", "the client closed the connection"),
    "DT": ("edge", "the client's request timed out"),
    "UAEX": ("ingress", "request denied by external authorization"),
    "RL": ("ingress", "request rate-limited"),
}


def http_status(node: SpanNode) -> int | None:
    """The span's HTTP response status, from the current or the old attribute name."""
    attrs = node.span.attributes
    for key in _STATUS_KEYS:
        value = attrs.get(key)
        if value is not None:
            try:
                return int(value)
            except (TypeError, ValueError):
                return None
    return None


def _envoy_flags(node: SpanNode) -> list[str]:
    flags = node.span.attributes.get("response_flags")
    if not flags or flags == "-":
        return []
    return [f for f in str(flags).replace(" ", "").split(",") if f in ENVOY_FLAGS]


def _exception(node: SpanNode) -> str | None:
    for event in node.span.events:
        if event.name == "exception":
            kind = event.attributes.get("exception.type")
            message = event.attributes.get("exception.message")
            text = ": ".join(str(x) for x in (kind, message) if x)
            return text or "exception"
    return None


def span_error(node: SpanNode) -> str | None:
    """Why this span counts as failed, in plain words, or None when it did not fail."""
    span = node.span
    status = http_status(node)
    if span.status == StatusCode.ERROR or (status is not None and status >= 500):
        detail = _exception(node) or span.status_message or span.attributes.get("error.type")
        if status is not None and status >= 400:
            return f"HTTP {status}" + (f" ({detail})" if detail else "")
        return str(detail) if detail else "status ERROR"
    flags = _envoy_flags(node)
    if flags:
        return ENVOY_FLAGS[flags[0]][1]
    if span.attributes.get("error.type") is not None and span.kind == SpanKind.CLIENT:
        return f"transport error: {span.attributes['error.type']}"
    if span.kind != SpanKind.SERVER:
        exc = _exception(node)
        if exc is not None and span.status != StatusCode.OK:
            return exc
    return None


def has_client_descendant(node: SpanNode) -> bool:
    """Did this span (or anything under it) make a call? Proxies trace their own routing as INTERNAL
    spans (Traefik's Router and Service), so "no children" is not "no upstream call"."""
    stack = list(node.children)
    while stack:
        cur = stack.pop()
        if cur.span.kind == _CLIENT:
            return True
        if cur.children:
            stack.extend(cur.children)
    return False


def ingress_without_upstream(node: SpanNode) -> int | None:
    """The status of an ingress SERVER span that answered 404/502/503/504 without calling upstream."""
    if node.layer != "ingress" or node.span.kind != _SERVER:
        return None
    status = http_status(node)
    if status not in (404, 502, 503, 504) or has_client_descendant(node):
        return None
    return status


def _failure(node: SpanNode) -> str | None:
    why = span_error(node)
    if why is None:
        status = ingress_without_upstream(node)
        if status is not None:
            why = f"HTTP {status} without an upstream call"
    return why


def _rejection(node: SpanNode) -> str | None:
    """Why this span counts in a rejected request's chain: it failed, or it answered 4xx."""
    why = _failure(node)
    if why is None:
        status = http_status(node)
        if status is not None and 400 <= status < 500:
            return f"HTTP {status}"
    return why


def passes_through(node: SpanNode) -> bool:
    """A span that did not fail and gave no answer of its own: a failure below it reached its caller
    through it (a proxy's routing span, an INTERNAL wrapper). A span that recorded a success (status
    OK, an HTTP status below 400) handled whatever failed below it."""
    if node.span.status is _OK:
        return False
    status = http_status(node)
    return status is None or status >= 400


def _chain(root: SpanNode, why: str, failing: Callable[[SpanNode], str | None]) -> tuple[SpanNode, str]:
    """Follow the failure down from ``root``: through failing spans and spans it passed through.

    Returns the origin, the deepest failing span reached (ties: the one that ended last), and why it
    failed; ``failed`` is set on the failing spans of the chain.
    """
    root.failed = True
    origin, origin_why = root, why
    stack = [root]
    while stack:
        node = stack.pop()
        for child in node.children:
            child_why = failing(child)
            if child_why is not None:
                child.failed = True
                stack.append(child)
                if (child.depth, child.end) > (origin.depth, origin.end):
                    origin, origin_why = child, child_why
            elif child.children and passes_through(child):
                stack.append(child)
    return origin, origin_why


def diagnose(tree: SpanTree, options: Options) -> SpanTree:
    """Fill ``tree.diagnosis`` (failed_layer, reason, span_id, kind, outcome).

    Only the failing chain is examined (the root, the children of failing spans and of the spans the
    failure passed through), plus a cheap scan for ingress answers without an upstream call.
    """
    root = tree.root
    if root is None:
        return tree
    outcome = "failed"
    why = _failure(root)
    if why is not None:
        origin, why = _chain(root, why, _failure)
    else:
        status = http_status(root)
        if status is not None and 400 <= status < 500:
            # The caller got an error status: the request was rejected (not a failure of the system).
            outcome = "rejected"
            origin, why = _chain(root, f"HTTP {status}", _rejection)
        else:
            # The root did not fail itself; an ingress may still have answered 404/503 on its own.
            # Checking the few ingress SERVER spans (and their ancestry) costs less than walking
            # the tree for every trace.
            found: SpanNode | None = None
            for node in tree.ingress_servers:  # noted by layer classification
                if (
                    ingress_without_upstream(node)
                    and (found is None or (node.depth, node.end) > (found.depth, found.end))
                    and _under(node, root)
                ):
                    found = node
            if found is None:
                return tree
            origin = found
            origin.failed = True
            why = f"HTTP {http_status(origin)} without an upstream call"
    layer, kind, reason = _explain(origin, why, outcome == "rejected")
    if kind == "no-route":
        outcome = "rejected"
    tree.diagnosis = {
        "failed_layer": layer,
        "reason": reason,
        "span_id": origin.span.span_id,
        "kind": kind,
        "outcome": outcome,
    }
    return tree


def _under(node: SpanNode, root: SpanNode) -> bool:
    """Is ``node`` ``root`` or one of its descendants?"""
    cur: SpanNode | None = node
    while cur is not None:
        if cur is root:
            return True
        cur = cur.parent
    return False


def _explain(node: SpanNode, why: str, rejected: bool = False) -> tuple[str, str, str]:
    """(failed_layer, short kind, plain-words reason) for the origin ``node`` of a failed request, or
    of a rejected one (the caller got a 4xx answer: ``rejected``)."""
    span = node.span
    where = f"{span.service} '{span.name}'"
    no_upstream = ingress_without_upstream(node)
    if no_upstream == 404:
        return (
            "ingress",
            "no-route",
            f"no ingress rule matched: {where} answered 404 without an upstream call",
        )
    if no_upstream is not None:
        return (
            "service",
            "no-endpoints",
            f"no ready endpoints: {where} answered {no_upstream} without an upstream call",
        )
    if rejected:
        # The caller got a 4xx: whoever produced it (the deepest span of the chain) is named, and the
        # kind says "rejected" whatever the span looked like (a client span with status ERROR...).
        if span.kind == _CLIENT and not any(c.span.kind == _SERVER for c in node.children):
            layer = node.hop_layer
            return layer, "rejected", f"request rejected: {where} got {why} from the {layer} hop"
        return node.layer, "rejected", f"request rejected: {where} answered {why}"
    flags = _envoy_flags(node)
    if flags:
        layer, words = ENVOY_FLAGS[flags[0]]
        return layer, f"envoy-{flags[0]}", f"{words} (Envoy response flag {flags[0]} on {where})"
    if span.kind == SpanKind.CLIENT:
        hop = node.hop_layer
        got_answer = any(c.span.kind == SpanKind.SERVER for c in node.children)
        status = http_status(node)
        if hop == "edge":
            if status is None and not got_answer:
                return "edge", "unreachable", f"the client never reached the cluster ({why})"
            return "edge", "edge-error", f"failed between the client and the cluster ({why}) on {where}"
        if hop == "service" and not got_answer:
            return (
                "service",
                "no-endpoints",
                f"no pod answered the call from {where}: no ready endpoints or connection refused ({why})",
            )
        if hop == "sidecar" and not got_answer:
            return "sidecar", "sidecar-unreachable", f"the DB sidecar did not answer {where} ({why})"
        if hop == "db":
            return "db", "db-error", f"database statement failed: {where} ({why})"
        if hop == "external":
            return "external", "external-error", f"external call failed: {where} ({why})"
        return hop, "call-failed", f"call failed on the {hop} hop: {where} ({why})"
    layer = node.layer
    kind = "exception" if _exception(node) else "error"
    failed = {"app": "the app failed", "sidecar": "the DB sidecar failed", "db": "the database failed"}
    return layer, kind, f"{failed.get(layer, f'{layer} failed')}: {where}: {why}"

"""Keep secrets out of spans: secret headers are never captured, secret query values are redacted.

Two mechanisms, both on top of what OpenTelemetry already offers rather than beside it:

* Header capture is configured by users through ``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_*`` (regexes,
  comma separated, matched case-insensitively against the whole header name). We rewrite those variables
  once so that Authorization, Cookie, Set-Cookie, Proxy-Authorization (and ``TRACEKIT_SECRET_HEADERS``)
  can never match, whatever pattern the user wrote (``.*`` included): the instrumentations read the
  variables per request, so rewriting them is enough and needs no patching.
* Query strings: the instrumentations record ``http.url``/``http.target`` (or ``url.full``/``url.query``)
  verbatim. Our hooks run after those attributes are set (the Flask response hook, the requests request
  hook) and overwrite them with the configured keys' values replaced by ``REDACTED``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, MutableMapping
from typing import TYPE_CHECKING
from urllib.parse import unquote_plus

from tracekit import attributes as a

if TYPE_CHECKING:
    from opentelemetry.trace import Span

#: Query-string keys redacted by default (env ``TRACEKIT_REDACT_QUERY_KEYS`` replaces the list).
DEFAULT_QUERY_KEYS = frozenset({"token", "password", "secret", "api_key", "access_token"})
REDACTED = "REDACTED"

#: The header-capture variables of the OpenTelemetry HTTP instrumentations.
CAPTURE_ENV_VARS = (
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE",
)

#: Span attributes that can carry a query string (old and stable HTTP semantic conventions).
URL_ATTRIBUTES = ("http.url", "http.target", "url.full", "url.query")


def query_keys_from_env(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    env = os.environ if environ is None else environ
    raw = env.get("TRACEKIT_REDACT_QUERY_KEYS")
    if raw is None:
        return DEFAULT_QUERY_KEYS
    return frozenset(k.strip().lower() for k in raw.split(",") if k.strip())


def secret_headers(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    env = os.environ if environ is None else environ
    extra = {h.strip().lower() for h in (env.get("TRACEKIT_SECRET_HEADERS") or "").split(",") if h.strip()}
    return a.SECRET_HEADERS | extra


def redact_query(query: str, keys: Iterable[str]) -> str:
    """Replace the values of ``keys`` (case-insensitive) in a raw query string; keep everything else."""
    keys = frozenset(keys)
    if not query or not keys:
        return query
    parts = query.split("&")
    changed = False
    for i, part in enumerate(parts):
        name, sep, _ = part.partition("=")
        if unquote_plus(name).lower() in keys:
            parts[i] = f"{name}={REDACTED}" if sep else part
            changed = changed or bool(sep)
    return "&".join(parts) if changed else query


def has_secret_key(query: str, keys: frozenset[str]) -> bool:
    """Cheap test whether a raw query string names any of ``keys`` (so redaction has work to do)."""
    if not keys:
        return False
    lowered = query.lower()
    if "%" not in query and "+" not in query and not any(k in lowered for k in keys):
        return False  # the usual case: no key can match, nothing to parse
    return redact_query(query, keys) != query


def redact_url(url: str, keys: Iterable[str]) -> str:
    """Redact the query of a URL or request target (``/p?token=x#f`` -> ``/p?token=REDACTED#f``)."""
    head, sep, rest = url.partition("?")
    if not sep:
        return url
    query, hsep, fragment = rest.partition("#")
    return f"{head}?{redact_query(query, keys)}{hsep}{fragment}"


def redact_span_urls(span: Span, keys: frozenset[str]) -> None:
    """Overwrite the URL attributes of a live span with redacted values (no-op when nothing to hide)."""
    attrs = getattr(span, "attributes", None)
    if not attrs or not keys:
        return
    for key in URL_ATTRIBUTES:
        value = attrs.get(key)
        if not isinstance(value, str) or "=" not in value:
            continue
        new = redact_query(value, keys) if key == "url.query" else redact_url(value, keys)
        if new != value:
            span.set_attribute(key, new)


_GUARD_PREFIX = "(?!(?:"
_FLAGS = re.compile(r"^\(\?[aiLmsux]+\)")


def protect_header_capture(
    environ: MutableMapping[str, str] | None = None, secrets: Iterable[str] | None = None
) -> list[str]:
    """Rewrite the header-capture variables so no secret header can be captured; return what changed.

    Patterns naming a secret header literally are dropped; the rest are wrapped in one regex with a
    negative look-ahead, so a pattern such as ``.*`` still captures every other header. Idempotent.
    """
    env = os.environ if environ is None else environ
    secret = sorted(secrets if secrets is not None else secret_headers(env))
    guard = _GUARD_PREFIX + "|".join(s.replace("-", r"\-") for s in secret) + ")$)"
    changed = []
    for var in CAPTURE_ENV_VARS:
        raw = env.get(var)
        if not raw or _GUARD_PREFIX in raw:
            continue
        patterns = [p.strip() for p in raw.split(",") if p.strip()]
        kept = [p for p in patterns if p.lower() not in secret]
        # Global inline flags like "(?i)" are only legal at the very start: hoist them.
        flags = "".join(sorted({f for p in kept for f in (_FLAGS.match(p) or [""])[0][2:-1]}))
        kept = [_FLAGS.sub("", p, count=1) for p in kept]
        head = f"(?{flags})" if flags else ""
        env[var] = head + guard + "(?:" + "|".join(kept) + ")" if kept else ""
        changed.append(var)
    return changed

"""Keep secrets out of spans: credential headers are never captured, secret values in URLs are redacted.

One rule for text (:func:`redact_text`): in any string, the value of a ``name=value`` pair whose name is
a secret query key becomes ``REDACTED``, and the userinfo of ``scheme://user:pass@host`` becomes
``REDACTED:REDACTED`` (the form OpenTelemetry's ``url.full`` convention asks for). It works on a URL, a
request target, a bare query string, an exception message, a stack trace and a status message alike,
so every place a URL can land is redacted by the same rule. The demo's ingress calls it too.

Where it is applied:

* **URL attributes on the request path**: the Flask response hook and the requests request hook rewrite
  ``http.url``/``http.target``/``url.full``/``url.query`` (see ``hooks.py``), so spans are clean even in a
  pipeline tracekit does not own (``tracer_provider=``); both hooks decide with one cheap test whether
  there is anything to do.
* **Everything else, at export**: :func:`redact_spans` runs in the export thread of tracekit's processor
  (never in a request) on every attribute, event attribute (``exception.message``,
  ``exception.stacktrace``) and status message, and drops captured header attributes that name a
  credential header. A span is copied only when something changes.
* **Header capture**: users set ``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_*`` (regexes matched by the
  instrumentations against the whole header name). :func:`protect_header_capture` rewrites those variables
  once so that no credential header (:data:`tracekit.attributes.SECRET_HEADERS`, names containing
  :data:`SECRET_HEADER_WORDS`, ``TRACEKIT_SECRET_HEADERS``) can match, whatever the pattern (``.*``
  included); the instrumentations read the variables per request, so no patching is needed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Status

from tracekit import attributes as a

if TYPE_CHECKING:
    from opentelemetry.trace import Span

REDACTED = "REDACTED"

#: Query-string keys whose values are redacted by default, and why (docs/library.md lists them; env
#: ``TRACEKIT_REDACT_QUERY_KEYS`` replaces the list). Matched case-insensitively, percent-decoded.
QUERY_KEY_REASONS: dict[str, str] = {
    # The set OpenTelemetry's semantic conventions (url.full, url.query) ask instrumentations to redact.
    "awsaccesskeyid": "AWS S3 presigned URL, access key (OpenTelemetry's list)",
    "signature": "AWS S3 presigned URL, signature (OpenTelemetry's list)",
    "sig": "Azure SAS token signature (OpenTelemetry's list)",
    "x-goog-signature": "Google Cloud Storage signed URL (OpenTelemetry's list)",
    # Signed URLs of the big clouds, the parts OpenTelemetry's list leaves out.
    "x-amz-signature": "AWS SigV4 presigned URL, signature",
    "x-amz-credential": "AWS SigV4 presigned URL, access key and scope",
    "x-amz-security-token": "AWS temporary credentials (STS session token)",
    "x-goog-credential": "Google Cloud Storage signed URL, service account",
    # OAuth 2.0 and OpenID Connect.
    "access_token": "OAuth 2.0 bearer token (RFC 6750 allows it in the query)",
    "refresh_token": "OAuth 2.0 refresh token",
    "id_token": "OpenID Connect ID token",
    "client_secret": "OAuth 2.0 client secret",
    "code": "OAuth 2.0 authorization code (redirect URIs)",
    # Common names for API keys, tokens and passwords.
    "token": "generic token",
    "auth": "generic credential",
    "auth_token": "generic token",
    "api_key": "API key",
    "apikey": "API key",
    "api-key": "API key",
    "key": "API key (Google APIs, many others)",
    "secret": "generic secret",
    "password": "password",
    "passwd": "password",
    "pwd": "password",
    "session": "session identifier",
    "sessionid": "session identifier",
    "jwt": "JSON Web Token",
}
DEFAULT_QUERY_KEYS = frozenset(QUERY_KEY_REASONS)

#: Words that make a header a credential header whatever its full name (``X-Vault-Token``,
#: ``X-Upstream-Secret``): header capture can never record them.
SECRET_HEADER_WORDS = ("auth", "token", "secret", "passw", "api-key", "apikey", "credential", "cookie",
                       "session", "signature")  # fmt: skip

#: The header-capture variables of the OpenTelemetry HTTP instrumentations.
CAPTURE_ENV_VARS = (
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE",
)

#: Span attributes that can carry a query string (old and stable HTTP semantic conventions).
URL_ATTRIBUTES = ("http.url", "http.target", "url.full", "url.query")
#: Prefixes of the attributes header capture writes (``http.request.header.x_team``).
HEADER_ATTRIBUTE_PREFIXES = ("http.request.header.", "http.response.header.")

# A name=value pair: the name is not glued to a longer word; the value runs to the next separator.
_PAIR = re.compile(r"(?<![\w%.+-])([\w%.+-]+)=([^&#\s'\"<>;\\]*)")
# scheme://userinfo@ : the userinfo has no '/', '?', '#', '@' or whitespace.
_USERINFO = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://)([^/?#@\s'\"<>]+)@")


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


def is_secret_header(name: str, secrets: Iterable[str] | None = None) -> bool:
    """Whether a header (``X-Api-Key``, or an attribute suffix such as ``x_api_key``) is a credential."""
    lowered = name.lower().replace("_", "-")
    names = a.SECRET_HEADERS if secrets is None else secrets
    return lowered in names or any(word in lowered for word in SECRET_HEADER_WORDS)


# --- the one rule for text ---------------------------------------------------------------------------


def redact_text(text: str, keys: Iterable[str]) -> str:
    """Redact secret ``key=value`` values and URL userinfo anywhere in ``text``; keep everything else."""
    keys = keys if isinstance(keys, frozenset) else frozenset(keys)
    out = text
    if "@" in out and "://" in out:
        out = _USERINFO.sub(lambda m: m.group(1) + f"{REDACTED}:{REDACTED}@", out)
    if keys and "=" in out:

        def pair(m: re.Match[str]) -> str:
            if m.group(2) and unquote_plus(m.group(1)).lower() in keys:
                return f"{m.group(1)}={REDACTED}"
            return m.group(0)

        out = _PAIR.sub(pair, out)
    return out


def redact_query(query: str, keys: Iterable[str]) -> str:
    """Replace the values of ``keys`` (case-insensitive) in a raw query string."""
    return redact_text(query, keys) if query else query


def redact_url(url: str, keys: Iterable[str]) -> str:
    """Redact a URL or request target: its userinfo and secret query values (``token=REDACTED``)."""
    return redact_text(url, keys)


def has_secret_key(query: str, keys: frozenset[str]) -> bool:
    """Cheap test whether a raw query string names any of ``keys`` (so redaction has work to do)."""
    if not keys:
        return False
    lowered = query.lower()
    if "%" not in query and "+" not in query and not any(k in lowered for k in keys):
        return False  # the usual case: no key can match, nothing to parse
    return redact_query(query, keys) != query


def redact_span_urls(span: Span, keys: frozenset[str]) -> None:
    """Overwrite the URL attributes of a live span with redacted values (no-op when nothing to hide)."""
    attrs = getattr(span, "attributes", None)
    if not attrs or not keys:
        return
    for key in URL_ATTRIBUTES:
        value = attrs.get(key)
        if not isinstance(value, str) or ("=" not in value and "@" not in value):
            continue
        new = redact_text(value, keys)
        if new != value:
            span.set_attribute(key, new)


# --- whole spans, at export ---------------------------------------------------------------------------


def _might_hide(value: str) -> bool:
    return "=" in value or "@" in value


def _clean_value(value: Any, keys: frozenset[str]) -> Any:
    if isinstance(value, str):
        return redact_text(value, keys) if _might_hide(value) else value
    if isinstance(value, tuple | list) and any(isinstance(v, str) and _might_hide(v) for v in value):
        return tuple(redact_text(v, keys) if isinstance(v, str) else v for v in value)
    return value


def _clean_attributes(
    attrs: Mapping[str, Any] | None, keys: frozenset[str], secrets: frozenset[str]
) -> dict[str, Any] | None:
    """A redacted copy of ``attrs``, or None when nothing in them needs hiding."""
    if not attrs:
        return None
    changed: dict[str, Any] | None = None
    for name, value in attrs.items():
        if name.startswith(HEADER_ATTRIBUTE_PREFIXES) and is_secret_header(name.rpartition(".")[2], secrets):
            changed = dict(attrs) if changed is None else changed
            del changed[name]
            continue
        new = _clean_value(value, keys)
        if new is not value and new != value:
            changed = dict(attrs) if changed is None else changed
            changed[name] = new
    return changed


def redact_span(
    span: ReadableSpan, keys: frozenset[str], secrets: frozenset[str] = a.SECRET_HEADERS
) -> ReadableSpan:
    """``span`` itself when it holds nothing to hide, else a copy with attributes, events, status redacted."""
    attrs = _clean_attributes(span.attributes, keys, secrets)
    events: list[Event] | None = None
    for i, event in enumerate(span.events):
        new_attrs = _clean_attributes(event.attributes, keys, secrets)
        if new_attrs is not None:
            events = list(span.events) if events is None else events
            events[i] = Event(event.name, new_attrs, event.timestamp)
    status = span.status
    description = status.description
    new_status = None
    if description and _might_hide(description):
        cleaned = redact_text(description, keys)
        if cleaned != description:
            new_status = Status(status.status_code, cleaned)
    if attrs is None and events is None and new_status is None:
        return span
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attrs if attrs is not None else span.attributes,
        events=events if events is not None else span.events,
        links=span.links,
        kind=span.kind,
        instrumentation_scope=span.instrumentation_scope,
        status=new_status or status,
        start_time=span.start_time,
        end_time=span.end_time,
    )


def span_redactor(keys: frozenset[str], secrets: frozenset[str]) -> Any:
    """The batch step tracekit's processor runs before export (in its export thread)."""

    def redact_spans(batch: Sequence[ReadableSpan]) -> list[ReadableSpan]:
        return [redact_span(s, keys, secrets) for s in batch]

    return redact_spans


# --- header capture ------------------------------------------------------------------------------------

_GUARD_PREFIX = "(?!(?:"
_FLAGS = re.compile(r"^\(\?[aiLmsux]+\)")


def _header_regex(name: str) -> str:
    return re.escape(name).replace(r"\-", "-").replace("-", "[-_]")


def protect_header_capture(
    environ: MutableMapping[str, str] | None = None, secrets: Iterable[str] | None = None
) -> list[str]:
    """Rewrite the header-capture variables so no credential header can be captured; return what changed.

    Patterns naming a secret header literally are dropped; the rest are wrapped in one regex behind two
    negative look-aheads (the exact names, then the words), so a pattern such as ``.*`` still captures
    every other header. Idempotent.
    """
    env = os.environ if environ is None else environ
    secret = sorted(secrets if secrets is not None else secret_headers(env))
    exact = "|".join(_header_regex(s) for s in secret)
    words = "|".join(_header_regex(w) for w in SECRET_HEADER_WORDS)
    guard = f"{_GUARD_PREFIX}{exact})$)(?!.*(?:{words}))"
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

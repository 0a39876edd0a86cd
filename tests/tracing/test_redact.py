"""Secret handling: query redaction, and the header-capture guard checked with OpenTelemetry's matcher."""

from __future__ import annotations

import pytest
from opentelemetry.util.http import SanitizeValue, get_custom_headers, normalise_request_header_name

from tracekit.tracing.redact import (
    CAPTURE_ENV_VARS,
    DEFAULT_QUERY_KEYS,
    QUERY_KEY_REASONS,
    protect_header_capture,
    query_keys_from_env,
    redact_query,
    redact_text,
    redact_url,
)

KEYS = frozenset({"token", "password", "api_key"})


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/p?token=abc&x=1", "/p?token=REDACTED&x=1"),
        ("http://h/p?x=1&Password=pw#frag", "http://h/p?x=1&Password=REDACTED#frag"),
        ("/p?api%5Fkey=k", "/p?api%5Fkey=REDACTED"),  # percent-encoded key names count too
        ("/p?tokenizer=1", "/p?tokenizer=1"),
        ("/p?token", "/p?token"),  # no value, nothing to hide
        ("/p", "/p"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url, KEYS) == expected


def test_redact_query_and_env_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    assert redact_query("a=1&token=t", KEYS) == "a=1&token=REDACTED"
    monkeypatch.setenv("TRACEKIT_REDACT_QUERY_KEYS", "Sig, otp")
    assert query_keys_from_env() == {"sig", "otp"}
    monkeypatch.delenv("TRACEKIT_REDACT_QUERY_KEYS")
    assert "access_token" in query_keys_from_env()


def _captured(env: dict[str, str], var: str, headers: dict[str, str]) -> dict:
    """What the OpenTelemetry matcher captures for ``headers`` given the (rewritten) variable."""
    import os

    old = dict(os.environ)
    os.environ.update(env)
    try:
        return SanitizeValue([]).sanitize_header_values(
            headers, get_custom_headers(var), normalise_request_header_name
        )
    finally:
        os.environ.clear()
        os.environ.update(old)


@pytest.mark.parametrize(
    "pattern", [".*", "Authorization,X-.*", "auth.*,cookie,x-team", "(?i)AUTHORIZATION,.*"]
)
def test_header_guard_blocks_secrets_whatever_the_pattern(pattern: str) -> None:
    var = CAPTURE_ENV_VARS[0]
    env = {var: pattern, "TRACEKIT_SECRET_HEADERS": "X-Api-Key"}
    changed = protect_header_capture(env)
    assert changed == [var]
    assert protect_header_capture(env) == []  # idempotent
    headers = {"Authorization": "Bearer x", "Cookie": "a=b", "Proxy-Authorization": "p", "X-Team": "t",
               "X-Api-Key": "k", "Set-Cookie": "s=1"}  # fmt: skip
    got = _captured(env, var, headers)
    assert not {k for k in got if any(s in k for s in ("authorization", "cookie", "api_key"))}, got
    assert "http.request.header.x_team" in got  # everything else is still captured


@pytest.mark.parametrize(
    ("query", "hit"),
    [("a=1", False), ("token=x", True), ("api%5Fkey=x", True), ("tokenizer=1", False), ("x=token", False)],
)
def test_has_secret_key(query: str, hit: bool) -> None:
    from tracekit.tracing.redact import has_secret_key

    assert has_secret_key(query, KEYS) is hit


def test_redact_span_urls_covers_stable_http_conventions() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    from tracekit.tracing.redact import redact_span_urls

    span = (
        TracerProvider()
        .get_tracer("t")
        .start_span(
            "s",
            attributes={
                "url.full": "https://h/p?token=t&a=1",
                "url.query": "a=1&password=p",
                "url.path": "/p",
            },
        )
    )
    redact_span_urls(span, KEYS)
    assert span.attributes["url.full"] == "https://h/p?token=REDACTED&a=1"
    assert span.attributes["url.query"] == "a=1&password=REDACTED"
    assert span.attributes["url.path"] == "/p"
    span.end()


@pytest.mark.parametrize("key", sorted(QUERY_KEY_REASONS))
def test_every_default_query_key_is_redacted(key: str) -> None:
    for spelled in (key, key.upper()):
        url = f"https://h/p?a=1&{spelled}=v4lue-{key}&z=2"
        assert redact_url(url, DEFAULT_QUERY_KEYS) == f"https://h/p?a=1&{spelled}=REDACTED&z=2"
    assert QUERY_KEY_REASONS[key]  # documented with a reason


def test_opentelemetry_recommended_keys_are_in_the_defaults() -> None:
    from opentelemetry.util.http import PARAMS_TO_REDACT

    assert {k.lower() for k in PARAMS_TO_REDACT} <= DEFAULT_QUERY_KEYS


def test_docs_list_every_default_key_and_secret_header() -> None:
    from pathlib import Path

    from tracekit.attributes import SECRET_HEADERS

    doc = (Path(__file__).parents[2] / "docs" / "library.md").read_text()
    missing = [k for k in [*QUERY_KEY_REASONS, *SECRET_HEADERS] if f"`{k}`" not in doc]
    assert not missing, missing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://u:p@h/x", "https://REDACTED:REDACTED@h/x"),
        ("git+https://ghp_tok3n@github.com/o/r", "git+https://REDACTED:REDACTED@github.com/o/r"),
        (
            "Max retries exceeded with url: /x?token=t0k&q=1 (Caused by NewConnectionError(...))",
            "Max retries exceeded with url: /x?token=REDACTED&q=1 (Caused by NewConnectionError(...))",
        ),
        (
            "  File \"app.py\", line 3, in f\n    get('http://h/p?password=pw')\n",
            "  File \"app.py\", line 3, in f\n    get('http://h/p?password=REDACTED')\n",
        ),
        ("monkey=1&donkey=2", "monkey=1&donkey=2"),  # a key inside a longer name is not the key
        ("no secrets here", "no secrets here"),
    ],
)
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text, DEFAULT_QUERY_KEYS) == expected


@pytest.mark.parametrize("header", ["X-Api-Key", "X-Auth-Token", "X-Vault-Token", "X-Upstream-Secret",
                                    "X-Session-Id", "Private-Token", "X-Amz-Security-Token"])  # fmt: skip
def test_credential_headers_are_never_captured(header: str) -> None:
    var = CAPTURE_ENV_VARS[1]
    env = {var: ".*," + header}
    protect_header_capture(env)
    got = _captured(env, var, {header: "v", "X-Team": "t"})
    assert list(got) == ["http.request.header.x_team"]


def test_redact_span_copies_only_spans_with_something_to_hide() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    from tracekit.tracing.redact import redact_span

    tracer = TracerProvider().get_tracer("t")
    clean = tracer.start_span("clean", attributes={"http.target": "/p?q=1", "n": 1})
    clean.add_event("e", {"m": "a=b"})
    clean.end()
    assert redact_span(clean, DEFAULT_QUERY_KEYS) is clean
    dirty = tracer.start_span("dirty", attributes={"http.request.header.x_api_key": ("k",), "n": 1})
    dirty.end()
    copy = redact_span(dirty, DEFAULT_QUERY_KEYS)
    assert dict(copy.attributes) == {"n": 1} and copy.context == dirty.context

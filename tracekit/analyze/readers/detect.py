"""Tell the format of an input from its first bytes, and whether it is one document or JSON lines.

Detection looks for the keys each format puts near the top (sqlite-utils' ``rows_from_file`` peeks
the same way). The earliest distinctive key wins, so a Jaeger file whose span tags mention
``resourceSpans`` in a string far below is still Jaeger.
"""

from __future__ import annotations

import re

from tracekit.errors import UnknownFormatError

OTLP, JAEGER, ZIPKIN = "otlp", "jaeger", "zipkin"

#: Names accepted by ``format=`` (docs/design.md's pipeline names included).
FORMAT_ALIASES = {
    "otlp": OTLP,
    "otlp-json": OTLP,
    "otlp-jsonl": OTLP,
    "otlp_json": OTLP,
    "jaeger": JAEGER,
    "jaeger-json": JAEGER,
    "zipkin": ZIPKIN,
    "zipkin-v2": ZIPKIN,
    "zipkin-json": ZIPKIN,
}

_MARKERS = re.compile(
    rb'"(resourceSpans|resource_spans|batches|scopeSpans|scope_spans'
    rb"|traceID|spanID|operationName|processes|data"
    rb'|traceId|parentId|localEndpoint)"\s*:'
)
_OTLP_KEYS = {b"resourceSpans", b"resource_spans", b"batches", b"scopeSpans", b"scope_spans"}
_JAEGER_KEYS = {b"traceID", b"spanID", b"operationName", b"processes", b"data"}
_ZIPKIN_KEYS = {b"localEndpoint", b"parentId"}

BOM = b"\xef\xbb\xbf"

#: Documents that look like trace data but hold none the analyzer can read: a key only they write ->
#: what they are and what to give instead. Checked before the formats' own keys, since several of
#: them also carry ``traceID`` or ``traceId`` (a Tempo search result would otherwise be refused as
#: "Jaeger JSON without data").
NEAR_MISSES: tuple[tuple[bytes, str], ...] = (
    (
        b'"rootServiceName"',
        "a Tempo search response (trace summaries without spans): fetch each trace by id "
        "(/api/traces/<id>) and analyse that",
    ),
    (b'"resourceMetrics"', "OTLP metrics, not traces: export the traces pipeline (resourceSpans)"),
    (b'"resourceLogs"', "OTLP logs, not traces: export the traces pipeline (resourceSpans)"),
    (
        b'"binaryAnnotations"',
        "Zipkin v1 JSON (binaryAnnotations): only Zipkin v2 is read; fetch /api/v2/traces instead",
    ),
)
_NEAR_MISS = re.compile(b"|".join(re.escape(key) + rb"\s*:" for key, _ in NEAR_MISSES))


def strip_bom(data: bytes) -> bytes:
    return data[3:] if data.startswith(BOM) else data


def _first_char(head: bytes) -> int | None:
    stripped = strip_bom(head).lstrip()
    return stripped[0] if stripped else None


def detect_format(head: bytes, name: str) -> str:
    """Return ``"otlp"``, ``"jaeger"`` or ``"zipkin"``; raise ``UnknownFormatError`` otherwise."""
    first = _first_char(head)
    if first is None:
        raise UnknownFormatError("empty input (no trace data)", path=name)
    if first not in b"{[":
        if b"\x00" in head[:512] or not _is_text(head[:512]):
            raise UnknownFormatError("not a trace file: binary content, not JSON", path=name)
        raise UnknownFormatError(
            f"not a trace file: content is not JSON (starts with {strip_bom(head).lstrip()[:20]!r})",
            path=name,
        )
    near = _NEAR_MISS.search(head)
    if near is not None:
        key = near.group(0).split(b":")[0].rstrip()
        what = next(text for k, text in NEAR_MISSES if k == key)
        raise UnknownFormatError(f"not trace data the analyzer reads: this looks like {what}", path=name)
    for m in _MARKERS.finditer(head):
        key = m.group(1)
        if key in _OTLP_KEYS:
            return OTLP
        if key in _JAEGER_KEYS:
            return JAEGER
        if key in _ZIPKIN_KEYS or (key == b"traceId" and first == ord("[")):
            return ZIPKIN
    if first == ord("[") and strip_bom(head).strip().replace(b" ", b"") in (b"[]", b"[[]]"):
        return ZIPKIN
    if b'"result"' in head:
        return OTLP
    raise UnknownFormatError(
        "not a trace file: no OTLP (resourceSpans), Jaeger (data/traceID/spans) or Zipkin "
        "(array of spans with traceId) keys found",
        path=name,
    )


def _is_text(sample: bytes) -> bool:
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start >= len(sample) - 3  # cut in the middle of a character at the sample's end
    return True


def is_line_oriented(head: bytes) -> bool:
    """True when the first non-empty line is itself a complete JSON value (JSONL / one per line).

    A pretty-printed document opens with a line ``{`` or ``[``; a JSONL file's first line is a whole
    object. A single-line document is read as a one-line JSONL file, with the same result.
    """
    data = strip_bom(head)
    start = 0
    while True:
        nl = data.find(b"\n", start)
        line = data[start:] if nl < 0 else data[start:nl]
        stripped = line.strip()
        if stripped or nl < 0:
            break
        start = nl + 1
    if not stripped:
        return False
    if nl < 0 and len(head) >= 64 * 1024:
        return stripped[:1] == b"{"  # first line longer than the head: a long JSONL line
    return (stripped[:1], stripped[-1:]) in ((b"{", b"}"), (b"[", b"]")) and len(stripped) >= 2

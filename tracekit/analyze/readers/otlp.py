"""OTLP JSON: the Collector file exporter's JSONL, single documents, and their wrappers.

Accepted shapes (each a JSON object, alone in a file or one per line):

- ``ExportTraceServiceRequest`` / ``TracesData``: ``{"resourceSpans": [...]}``;
- the same in snake_case (``resource_spans``, ``scope_spans``, ``start_time_unix_nano``), as some
  protobuf-to-JSON tools write it;
- Tempo's legacy ``{"batches": [...]}`` and the older ``instrumentationLibrarySpans``;
- Jaeger API v3 (grpc-gateway) frames ``{"result": {"resourceSpans": [...]}}``.

Decoding uses ``msgspec`` typed structs: only the fields tracekit needs are materialised, in C.
int64 values may be JSON strings (protojson) or numbers; enums numbers or names; ids hex (any
case) or base64. The struct types are built twice from one description (camelCase and snake_case
field names) instead of being written out twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import msgspec

from tracekit.analyze.model import Event, Link, Span, SpanKind, StatusCode
from tracekit.analyze.readers.assemble import TraceAssembler
from tracekit.analyze.readers.common import BadId, WarningReporter, clip, normalize_id

_OptStr = str | None
#: int64 as a JSON number or string: ``strict=False`` decoding turns "123" into 123 in C.
_IntLike = int | None


def _build_types(rename: str | None) -> Any:
    """Build the struct family for one field-name style and return the top-level type."""

    def struct(name: str, fields: list[tuple[str, Any, Any]]) -> Any:
        return msgspec.defstruct(name, fields, rename=rename, gc=False, omit_defaults=True)

    any_value = struct(
        "AnyValue",
        [
            ("string_value", _OptStr, None),
            ("bool_value", bool | None, None),
            ("int_value", _IntLike, None),
            ("double_value", float | str | None, None),
            ("array_value", Any, None),
            ("kvlist_value", Any, None),
            ("bytes_value", _OptStr, None),
        ],
    )
    key_value = struct("KeyValue", [("key", str, ""), ("value", any_value | None, None)])
    attrs = list[key_value] | None
    event = struct(
        "Event", [("time_unix_nano", _IntLike, 0), ("name", _OptStr, ""), ("attributes", attrs, None)]
    )
    link = struct("Link", [("trace_id", _OptStr, ""), ("span_id", _OptStr, ""), ("attributes", attrs, None)])
    status = struct("Status", [("code", int | str | None, 0), ("message", _OptStr, "")])
    span = struct(
        "Span",
        [
            ("trace_id", _OptStr, None),
            ("span_id", _OptStr, None),
            ("parent_span_id", _OptStr, None),
            ("name", _OptStr, ""),
            ("kind", int | str | None, 0),
            ("start_time_unix_nano", _IntLike, None),
            ("end_time_unix_nano", _IntLike, None),
            ("attributes", attrs, None),
            ("events", list[event] | None, None),
            ("links", list[link] | None, None),
            ("status", status | None, None),
        ],
    )
    scope_spans = struct("ScopeSpans", [("spans", list[span] | None, None)])
    resource = struct("Resource", [("attributes", attrs, None)])
    resource_spans = struct(
        "ResourceSpans",
        [
            ("resource", resource | None, None),
            ("scope_spans", list[scope_spans] | None, None),
            ("instrumentation_library_spans", list[scope_spans] | None, None),
        ],
    )
    inner = struct(
        "TracesData",
        [
            ("resource_spans", list[resource_spans] | None, None),
            ("batches", list[resource_spans] | None, None),
        ],
    )
    envelope = struct(
        "Envelope",
        [
            ("resource_spans", list[resource_spans] | None, None),
            ("batches", list[resource_spans] | None, None),
            ("result", inner | None, None),
            ("error", Any, None),
        ],
    )
    return envelope, span


_CAMEL_TYPES = _build_types("camel")
_SNAKE_TYPES = _build_types(None)
_CAMEL = msgspec.json.Decoder(_CAMEL_TYPES[0], strict=False)
_SNAKE = msgspec.json.Decoder(_SNAKE_TYPES[0], strict=False)

_KINDS = list(SpanKind)
_KIND_NAMES = {k.name: k for k in SpanKind} | {f"SPAN_KIND_{k.name}": k for k in SpanKind}
_STATUSES = list(StatusCode)
_STATUS_NAMES = {s.name: s for s in StatusCode} | {f"STATUS_CODE_{s.name}": s for s in StatusCode}
#: The common case: the enum as its number.
_KIND_OF: dict[Any, SpanKind] = {k.value: k for k in SpanKind}
_STATUS_OF: dict[Any, StatusCode] = {s.value: s for s in StatusCode}


def _enum(value: Any, members: list[Any], names: dict[str, Any], default: Any) -> Any:
    if value.__class__ is int:
        return members[value] if 0 <= value < len(members) else default
    if value is None:
        return default
    text = str(value).strip().upper()
    if text.isdigit():
        n = int(text)
        return members[n] if n < len(members) else default
    return names.get(text, default)


def _slow_value(v: Any) -> Any:
    if v.bool_value is not None:
        return v.bool_value
    if v.int_value is not None:
        iv = v.int_value
        return iv if iv.__class__ is int else int(iv)
    if v.double_value is not None:
        d = v.double_value
        if d.__class__ is str:
            try:
                return float(d)
            except ValueError:
                return d
        return d
    if v.array_value is not None:
        values = v.array_value.get("values") if isinstance(v.array_value, dict) else None
        return [_plain_value(x) for x in values or ()]
    if v.kvlist_value is not None:
        values = v.kvlist_value.get("values") if isinstance(v.kvlist_value, dict) else None
        return {
            kv.get("key", ""): _plain_value(kv.get("value")) for kv in values or () if isinstance(kv, dict)
        }
    if v.bytes_value is not None:
        return v.bytes_value
    return None


def _plain_value(v: Any) -> Any:
    """Value of an untyped (dict) AnyValue, as found inside arrays and kvlists."""
    if not isinstance(v, dict) or not v:
        return None
    (key, val), *_ = v.items()
    if key in ("intValue", "int_value"):
        try:
            return int(val)
        except (TypeError, ValueError):
            return val
    if key in ("doubleValue", "double_value"):
        try:
            return float(val)
        except (TypeError, ValueError):
            return val
    if key in ("arrayValue", "array_value"):
        return [_plain_value(x) for x in (val or {}).get("values") or ()]
    if key in ("kvlistValue", "kvlist_value"):
        return {kv.get("key", ""): _plain_value(kv.get("value")) for kv in (val or {}).get("values") or ()}
    return val


def attributes(kvs: Any) -> dict[str, Any]:
    """KeyValue list -> plain dict. Strings (by far the most common) take the fast path."""
    d: dict[str, Any] = {}
    if not kvs:
        return d
    for kv in kvs:
        v = kv.value
        if v is None:
            continue
        s = v.string_value
        d[kv.key] = s if s is not None else _slow_value(v)
    return d


def decode(data: bytes | memoryview) -> Any:
    """Decode one OTLP JSON object (camelCase first; snake_case when nothing camelCase was found)."""
    env = _CAMEL.decode(data)
    if env.resource_spans is None and env.batches is None and (env.result is None or _empty(env.result)):
        alt = _SNAKE.decode(data)
        if (
            alt.resource_spans is not None
            or alt.batches is not None
            or (alt.result and not _empty(alt.result))
        ):
            return alt
    return env


def decode_lenient(data: bytes | memoryview, warn: Callable[[str], None]) -> Any:
    """Decode a document that failed typed decoding, dropping only the spans that do not validate.

    A collector line holds a whole batch: one span with a malformed field must not cost the other
    thousand. The document is decoded untyped, every span is validated on its own (bad ones are
    reported with their JSON path and removed), and the rest is converted to the typed envelope.
    Raises the decoder's error when the damage is outside the spans.
    """
    doc = msgspec.json.decode(data)
    if not isinstance(doc, dict):
        raise msgspec.ValidationError("Expected `object`, got `" + type(doc).__name__ + "`")
    snake = "resource_spans" in doc or "resource_spans" in (doc.get("result") or {})
    envelope_type, span_type = _SNAKE_TYPES if snake else _CAMEL_TYPES
    if snake:
        rs_keys, ss_keys = ("resource_spans", "batches"), ("scope_spans", "instrumentation_library_spans")
    else:
        rs_keys, ss_keys = ("resourceSpans", "batches"), ("scopeSpans", "instrumentationLibrarySpans")
    holders = [("$", doc)]
    if isinstance(doc.get("result"), dict):
        holders.append(("$.result", doc["result"]))
    for where, holder in holders:
        for rs_key in rs_keys:
            for i, rs in enumerate(holder.get(rs_key) or ()):
                for ss_key in ss_keys:
                    scopes = rs.get(ss_key) if isinstance(rs, dict) else None
                    for j, scope in enumerate(scopes or ()):
                        spans = scope.get("spans") if isinstance(scope, dict) else None
                        if not isinstance(spans, list):
                            continue
                        good = []
                        for k, sp in enumerate(spans):
                            try:
                                msgspec.convert(sp, span_type, strict=False)
                            except msgspec.ValidationError as e:
                                path = f"{where}.{rs_key}[{i}].{ss_key}[{j}].spans[{k}]"
                                text = str(e)
                                if " - at `$" in text:
                                    message, sub = text.split(" - at `$", 1)
                                    path += sub.rstrip("`")
                                else:
                                    message = text
                                warn(f"span dropped: field {path}: {message}")
                                continue
                            good.append(sp)
                        scope["spans"] = good
    return msgspec.convert(doc, envelope_type, strict=False)


def _empty(inner: Any) -> bool:
    return inner.resource_spans is None and inner.batches is None


def resource_spans_of(env: Any) -> list[Any] | None:
    """All ResourceSpans of an envelope, whatever wrapper it came in; ``None`` if it has none."""
    found = None
    for holder in (env, env.result):
        if holder is None:
            continue
        for rss in (holder.resource_spans, holder.batches):
            if rss is not None:
                found = rss if found is None else found + rss
    return found


class OtlpConverter:
    """Turns decoded envelopes into model spans, grouped per trace into an assembler.

    Per-span problems (bad id, end before start) become warnings on the trace, or on the source
    when the trace id itself is unusable; the span is dropped or clamped, the rest is kept.
    """

    def __init__(self, asm: TraceAssembler, report: WarningReporter) -> None:
        self.asm = asm
        self.report = report
        self.spans_ok = 0

    def feed(self, data: bytes, line: int | None) -> int:
        """Decode one document (a file or a JSONL line) and convert its spans."""
        try:
            env = decode(data)
        except msgspec.ValidationError as first:
            try:
                env = decode_lenient(data, lambda message: self.report.warn(message, line=line))
            except (msgspec.ValidationError, msgspec.DecodeError, TypeError, AttributeError, ValueError):
                raise first from None  # the damage is outside the spans: report the typed error
        return self.add_envelope(env, line)

    def add_envelope(self, env: Any, line: int | None = None) -> int:
        """Convert every span of one envelope; returns how many spans were kept."""
        rss = resource_spans_of(env)
        if rss is None:
            if env.error is not None:
                raise ValueError(
                    f"the document is an error response: {clip(msgspec.json.encode(env.error).decode())}"
                )
            raise ValueError("no resourceSpans (not an OTLP traces document)")
        groups: defaultdict[str, list[Span]] = defaultdict(list)
        roots: set[str] = set()
        tid_cache: dict[str, str] = {}
        kept = 0
        for rs in rss:
            res_attrs = attributes(rs.resource.attributes) if rs.resource is not None else {}
            service = res_attrs.get("service.name")
            service = str(service) if service not in (None, "") else "unknown"
            for scopes in (rs.scope_spans, rs.instrumentation_library_spans):
                if not scopes:
                    continue
                for scope in scopes:
                    if scope.spans:
                        kept += self._spans(scope.spans, res_attrs, service, groups, roots, tid_cache, line)
        add = self.asm.add_spans
        for trace_id, spans in groups.items():
            add(trace_id, spans, trace_id in roots)
        self.spans_ok += kept
        return kept

    def _spans(
        self,
        spans: list[Any],
        res_attrs: dict[str, Any],
        service: str,
        groups: defaultdict[str, list[Span]],
        roots: set[str],
        tid_cache: dict[str, str],
        line: int | None,
    ) -> int:
        kept = 0
        kinds, kind_names = _KINDS, _KIND_NAMES
        kind_of, status_of = _KIND_OF, _STATUS_OF
        unspecified, unset = SpanKind.UNSPECIFIED, StatusCode.UNSET
        fromhex = bytes.fromhex
        warn = self.asm.warn
        for sp in spans:
            raw_tid = sp.trace_id
            tid = tid_cache.get(raw_tid) if raw_tid is not None else None
            if tid is None:
                try:
                    tid = normalize_id(raw_tid, 16, base64_ok=True)
                except BadId as e:
                    self.report.warn(f"span {sp.name!r:.60} dropped: field traceId: {e}", line=line)
                    continue
                tid_cache[raw_tid] = tid  # type: ignore[index]
            # Fast path: 16 hex characters (what every SDK and the Collector write).
            sid = sp.span_id
            try:
                if sid.__class__ is not str or len(sid) != 16:
                    raise ValueError
                fromhex(sid)
                if not sid.islower():  # lower() copies even an already lowercase string
                    sid = sid.lower()
            except ValueError:
                try:
                    sid = normalize_id(sid, 8, base64_ok=True)
                except BadId as e:
                    warn(tid, f"span {sp.name!r:.60} dropped: field spanId: {e}")
                    continue
            parent = sp.parent_span_id
            if parent:
                try:
                    if len(parent) != 16:
                        raise ValueError
                    fromhex(parent)
                    if not parent.islower():
                        parent = parent.lower()
                except ValueError:
                    try:
                        parent = normalize_id(parent, 8, base64_ok=True)
                    except BadId as e:
                        warn(tid, f"span {sid}: field parentSpanId ignored ({e}); span kept as a root")
                        parent = None
                if parent == "0000000000000000":
                    parent = None
            else:
                parent = None
            start = sp.start_time_unix_nano or 0
            end = sp.end_time_unix_nano or 0
            if end < start:
                warn(
                    tid,
                    f"span {sid}: end before start by {(start - end) / 1e6:.3f} ms; clamped to zero duration",
                )
                end = start
            kind = kind_of.get(sp.kind)
            if kind is None:
                kind = _enum(sp.kind, kinds, kind_names, unspecified)
            st = sp.status
            if st is None:
                status, message = unset, ""
            else:
                status = status_of.get(st.code)
                if status is None:
                    status = _enum(st.code, _STATUSES, _STATUS_NAMES, unset)
                message = st.message or ""
            span = Span(
                tid,
                sid,
                parent,
                sp.name or "",
                kind,
                start,
                end,
                service,
                status,
                message,
                attributes(sp.attributes),
                res_attrs,
                _events(sp.events) if sp.events else (),
                self._links(sp.links, tid) if sp.links else (),
            )
            groups[tid].append(span)
            if parent is None:
                roots.add(tid)
            kept += 1
        return kept

    def _links(self, links: list[Any], tid: str) -> tuple[Link, ...]:
        out = []
        for lk in links:
            try:
                out.append(
                    Link(
                        trace_id=normalize_id(lk.trace_id, 16, base64_ok=True),
                        span_id=normalize_id(lk.span_id, 8, base64_ok=True),
                        attributes=attributes(lk.attributes),
                    )
                )
            except BadId as e:
                self.asm.warn(tid, f"a link was ignored: {e}")
        return tuple(out)


def _events(events: list[Any]) -> tuple[Event, ...]:
    out = []
    for ev in events:
        out.append(
            Event(name=ev.name or "", time_ns=ev.time_unix_nano or 0, attributes=attributes(ev.attributes))
        )
    return tuple(out)

"""OTLP JSON: the Collector file exporter's JSONL, single documents, and their wrappers.

Accepted shapes (each a JSON object, alone in a file or one per line):

- ``ExportTraceServiceRequest`` / ``TracesData``: ``{"resourceSpans": [...]}``;
- the same in snake_case (``resource_spans``, ``scope_spans``, ``start_time_unix_nano``), as some
  protobuf-to-JSON tools write it;
- Tempo's legacy ``{"batches": [...]}`` and the older ``instrumentationLibrarySpans``;
- Jaeger API v3 (grpc-gateway) frames ``{"result": {"resourceSpans": [...]}}``.

Decoding uses ``msgspec`` typed structs: only the fields tracekit needs are materialised, in C.
int64 values may be JSON strings (protojson) or numbers; enums numbers or names; ids hex (any
case) or base64. The struct types are built from one description for both field-name styles
(camelCase and snake_case) instead of being written out twice, in two families (``_Style``): a fast
one that leaves attribute lists as raw JSON, decoded once per distinct list by the converter, and
a full one that validates everything and names the JSON path of a bad field.

Speed matters here (a Collector file holds millions of spans, and the whole analyzer aims to stay
within 3x a plain JSON decode: docs/performance.md). A line is converted in one of two ways, with
the same result:

- ``OtlpConverter._fast_line``, the common case (every id canonical, nothing to warn about): the
  ids of the whole line are checked at once, and ``_fast_spans``, the one loop that runs per span,
  only builds spans;
- ``OtlpConverter._spans``, the per-span loop that checks, repairs and warns, for any line the
  fast path declines.

Both loops are written flat on purpose. ``python -m bench readers`` measures them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from types import GenericAlias
from typing import Annotated, Any, Literal

import msgspec

from tracekit.analyze.model import Event, Link, Span, SpanKind, StatusCode
from tracekit.analyze.readers.assemble import SpanSink
from tracekit.analyze.readers.common import (
    MAX_NS,
    BadId,
    WarningReporter,
    canonical_ids,
    clip,
    normalize_id,
    split_error_path,
)

_OptStr = str | None
#: int64 as a JSON number or string: ``strict=False`` decoding turns "123" into 123 in C.
_IntLike = int | None
#: A span's start: required and not negative. A span without one cannot be placed on the timeline; it
#: fails the typed decode, so the lenient path drops it with a warning naming the field. A start of 0
#: ("not set" in OTLP, or the first instant of a relative trace) is decided per trace by the assembler.
_Start = Annotated[int, msgspec.Meta(ge=0, le=MAX_NS)]
#: Any other time: beyond ``MAX_NS`` (a 1e30 end time) it is refused, naming the field, not kept as a
#: duration of 1e24 ms.
_Time = Annotated[int, msgspec.Meta(le=MAX_NS)] | None
#: The pending-warning text that means "this trace has a span starting at 0" (see the assembler).
_ZERO_START = "\x00zero start"

#: ``attributes`` left undecoded: the raw JSON text of the KeyValue list (see ``_Style``).
_RAW = msgspec.Raw()


def _list_of(item: Any) -> Any:
    """``list[item] | None`` for a struct type made at run time (not a type a checker can follow)."""
    return GenericAlias(list, (item,)) | None


class _Style:
    """The decoders for one field-name style (camelCase as protojson writes, or snake_case).

    Two struct families are built from one description:

    - the *full* family decodes every KeyValue list into structs. It is the reference: the lenient
      path validates spans with it, and its errors name the exact JSON path of a bad field;
    - the *fast* family keeps span and resource ``attributes`` as ``msgspec.Raw`` (a slice of the
      input, not parsed into objects). Attribute lists repeat a lot (every span of a route or a
      query carries the same few pairs; a resource is repeated on every line), so the converter
      decodes each distinct list once, with ``attrs``, and shares the resulting dict (see
      ``AttributeCache``). Decoding KeyValue lists into structs was about half the decode time and
      building dicts from them a third of the conversion time.
    """

    def __init__(self, rename: Literal["camel"] | None) -> None:
        def struct(name: str, fields: list[tuple[str, Any] | tuple[str, Any, Any]]) -> Any:
            return msgspec.defstruct(name, fields, rename=rename, gc=False, omit_defaults=True, kw_only=True)

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
        attrs = _list_of(key_value)
        event = struct(
            "Event", [("time_unix_nano", _Time, 0), ("name", _OptStr, ""), ("attributes", attrs, None)]
        )
        link = struct(
            "Link", [("trace_id", _OptStr, ""), ("span_id", _OptStr, ""), ("attributes", attrs, None)]
        )
        status = struct("Status", [("code", int | str | None, 0), ("message", _OptStr, "")])

        def family(attrs_type: Any, attrs_default: Any) -> tuple[Any, Any]:
            span = struct(
                "Span",
                [
                    ("trace_id", _OptStr, None),
                    ("span_id", _OptStr, None),
                    ("parent_span_id", _OptStr, None),
                    ("name", _OptStr, ""),
                    ("kind", int | str | None, 0),
                    ("start_time_unix_nano", _Start),
                    ("end_time_unix_nano", _Time, None),
                    ("attributes", attrs_type, attrs_default),
                    ("events", _list_of(event), None),
                    ("links", _list_of(link), None),
                    ("status", status | None, None),
                ],
            )
            scope_spans = struct("ScopeSpans", [("spans", _list_of(span), None)])
            resource = struct("Resource", [("attributes", attrs_type, attrs_default)])
            resource_spans = struct(
                "ResourceSpans",
                [
                    ("resource", resource | None, None),
                    ("scope_spans", _list_of(scope_spans), None),
                    ("instrumentation_library_spans", _list_of(scope_spans), None),
                ],
            )
            inner = struct(
                "TracesData",
                [
                    ("resource_spans", _list_of(resource_spans), None),
                    ("batches", _list_of(resource_spans), None),
                ],
            )
            envelope = struct(
                "Envelope",
                [
                    ("resource_spans", _list_of(resource_spans), None),
                    ("batches", _list_of(resource_spans), None),
                    ("result", inner | None, None),
                    ("error", Any, None),
                ],
            )
            return envelope, span

        full_envelope, self.span = family(attrs, None)
        fast_envelope, _ = family(msgspec.Raw, _RAW)
        self.full = msgspec.json.Decoder(full_envelope, strict=False)
        self.fast = msgspec.json.Decoder(fast_envelope, strict=False)
        #: The fast envelope type tells which style decoded an envelope (``add_envelope``).
        self.fast_envelope = fast_envelope
        #: Decodes one raw ``attributes`` value of the fast family.
        self.attrs = msgspec.json.Decoder(attrs, strict=False)
        #: One attribute, for salvaging a list that does not validate as a whole (``salvage_attributes``).
        self.key_value = key_value


_CAMEL = _Style("camel")
_SNAKE = _Style(None)

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


def salvage_attributes(raw: bytes, style: _Style) -> tuple[dict[str, Any], list[str]]:
    """A span's attribute list that does not validate, as the attributes that do, plus one problem
    per dropped attribute (naming its field), so one bad value costs that value and not the span."""
    items = msgspec.json.decode(raw)  # valid JSON: the line decoded
    if not isinstance(items, list):
        return {}, [f"field attributes: Expected `array`, got `{type(items).__name__}`; attributes dropped"]
    good = []
    problems = []
    for i, item in enumerate(items):
        try:
            good.append(msgspec.convert(item, style.key_value, strict=False))
        except msgspec.ValidationError as e:
            message, sub = split_error_path(e)
            name = item.get("key") if isinstance(item, dict) else None
            problems.append(f"field attributes[{i}]{sub or ''}: {message}; attribute {name!r:.60} dropped")
    return attributes(good), problems


def decode(data: bytes | memoryview) -> Any:
    """Decode one OTLP JSON object (camelCase first; snake_case when nothing camelCase was found).

    The envelope is of the fast family: span and resource attributes are still raw JSON, which
    ``OtlpConverter.add_envelope`` decodes (and can reject with ``msgspec.ValidationError``).
    """
    env = _CAMEL.fast.decode(data)
    if _has_spans(env):
        return env
    alt = _SNAKE.fast.decode(data)
    return alt if _has_spans(alt) else env


def _has_spans(env: Any) -> bool:
    return (
        env.resource_spans is not None
        or env.batches is not None
        or bool(env.result and not _empty(env.result))
    )


def typed_error(data: bytes | memoryview) -> msgspec.ValidationError | None:
    """The error the full typed decoders raise for ``data`` (it names the JSON path), or ``None``.

    The fast decoders leave attributes raw, so a bad attribute is only noticed while converting,
    by a decoder that sees the attribute list alone; this recovers the message with the full path.
    """
    try:
        if not _has_spans(_CAMEL.full.decode(data)):
            _SNAKE.full.decode(data)
    except msgspec.ValidationError as e:
        return e
    return None


def decode_lenient(data: bytes | memoryview, warn: Callable[[str], None]) -> Any:
    """Decode a document that failed typed decoding, dropping only the spans that do not validate.

    A collector line holds a whole batch: one span with a malformed field must not cost the other
    thousand. The document is decoded untyped, every span is validated on its own with the full
    typed structs (bad ones are reported with their JSON path and removed), and the rest is decoded
    again into a fast envelope. Raises a decoder's error when the damage is outside the spans.
    """
    doc = msgspec.json.decode(data)
    if not isinstance(doc, dict):
        raise msgspec.ValidationError("Expected `object`, got `" + type(doc).__name__ + "`")
    snake = "resource_spans" in doc or "resource_spans" in (doc.get("result") or {})
    style = _SNAKE if snake else _CAMEL
    span_type = style.span
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
                            # The attribute list is left out: a bad one costs the attribute, not
                            # the span (``salvage_attributes``), whichever path the line takes.
                            probe = {**sp, "attributes": None} if isinstance(sp, dict) else sp
                            try:
                                msgspec.convert(probe, span_type, strict=False)
                            except msgspec.ValidationError as e:
                                message, sub = split_error_path(e)
                                path = f"{where}.{rs_key}[{i}].{ss_key}[{j}].spans[{k}]{sub or ''}"
                                warn(f"span dropped: field {path}: {message}")
                                continue
                            good.append(sp)
                        scope["spans"] = good
    # Back to bytes for the fast decoder (this is the rare path; damage outside the spans raises here
    # or in the converter, and the caller then reports the typed decoder's error).
    return style.fast.decode(msgspec.json.encode(doc))


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


#: Distinct attribute lists (and resources) remembered per reader; past this the cache starts over.
#: A few thousand covers the routes x statuses x queries of a real service mix; 8192 entries of a
#: few hundred bytes each stay under a few MB.
ATTRIBUTE_CACHE_SIZE = 8192

#: Trace ids remembered across lines (more than the traces open at once in a Collector file).
TRACE_ID_CACHE_SIZE = 32768

#: Never a trace id as decoded (those are str or None).
_NO_ID = object()


class OtlpConverter:
    """Turns decoded envelopes into model spans, grouped per trace into an assembler.

    Per-span problems (bad id, end before start) become warnings on the trace, or on the source
    when the trace id itself is unusable; the span is dropped or clamped, the rest is kept.

    Attribute dicts are shared: every span whose ``attributes`` JSON text is byte-for-byte the same
    as an earlier span's gets the same dict (the model treats them as read-only), and every
    ResourceSpans with the same resource gets the same resource dict and service. That saves the
    decoding and the dict building, and the memory of the open traces.
    """

    def __init__(self, asm: SpanSink, report: WarningReporter) -> None:
        self.asm = asm
        self.report = report
        self.spans_ok = 0
        #: Per style: raw ``attributes`` JSON -> dict, and raw resource attributes -> (dict, service).
        self._attrs: dict[_Style, dict[bytes, dict[str, Any]]] = {_CAMEL: {}, _SNAKE: {}}
        self._resources: dict[_Style, dict[bytes, tuple[dict[str, Any], str]]] = {_CAMEL: {}, _SNAKE: {}}
        #: Trace ids as written -> normalised. A trace's spans come over several lines: its id is
        #: checked once, and all its spans share one string. A bad id is not cached (reported per span).
        self._trace_ids: dict[str | None, str] = {}

    def feed(self, data: bytes, line: int | None) -> int:
        """Decode one document (a file or a JSONL line) and convert its spans.

        A line with a malformed span is converted again through ``decode_lenient``, which drops
        only the bad spans; conversion has no side effect until a line is fully converted, so the
        retry reports nothing twice.
        """
        try:
            return self.add_envelope(decode(data), line)
        except msgspec.ValidationError as e:
            first = typed_error(data) or e
        try:
            env = decode_lenient(data, lambda message: self.report.warn(message, line=line))
            return self.add_envelope(env, line)
        except (msgspec.ValidationError, msgspec.DecodeError, TypeError, AttributeError, ValueError):
            raise first from None  # the damage is outside the spans: report the typed error

    def add_envelope(self, env: Any, line: int | None = None) -> int:
        """Convert every span of one envelope (from ``decode``); returns how many spans were kept.

        :raises msgspec.ValidationError: an attribute list does not validate (nothing was added).
        """
        rss = resource_spans_of(env)
        if rss is None:
            if env.error is not None:
                raise ValueError(
                    f"the document is an error response: {clip(msgspec.json.encode(env.error).decode())}"
                )
            raise ValueError("no resourceSpans (not an OTLP traces document)")
        style = _SNAKE if env.__class__ is _SNAKE.fast_envelope else _CAMEL
        resources = self._resources[style]
        tids = self._trace_ids
        if len(tids) > TRACE_ID_CACHE_SIZE:
            tids.clear()
        #: The line's non-empty scopes, each with its resource's (attributes, service).
        batches: list[tuple[list[Any], tuple[dict[str, Any], str]]] = []
        for rs in rss:
            key = bytes(rs.resource.attributes) if rs.resource is not None else b""
            resource = resources.get(key)
            if resource is None:
                resource = self._resource(key, style)
            for scopes in (rs.scope_spans, rs.instrumentation_library_spans):
                if not scopes:
                    continue
                for scope in scopes:
                    if scope.spans:
                        batches.append((scope.spans, resource))
        #: Warnings as (trace id or None for the source, message), reported once the line is converted.
        pending: list[tuple[str | None, str]] = []
        groups: defaultdict[str, list[Span]] = defaultdict(list)
        roots: set[str] = set()
        fast = self._fast_line(batches, style, groups, roots, pending)
        if fast is not None:
            kept = fast
        else:
            # Something to warn about or to repair: the per-span checks say what and where.
            pending.clear()
            groups.clear()
            roots.clear()
            kept = 0
            for spans, resource in batches:
                kept += self._spans(spans, resource, style, groups, roots, tids, pending)
        asm = self.asm
        for trace_id, message in pending:
            if trace_id is None:
                self.report.warn(message, line=line)
            elif message is _ZERO_START:
                asm.zero_start(trace_id)
            else:
                asm.warn(trace_id, message)
        asm.add_groups(groups, roots)
        self.spans_ok += kept
        return kept

    def _fast_line(
        self,
        batches: list[tuple[list[Any], tuple[dict[str, Any], str]]],
        style: _Style,
        groups: defaultdict[str, list[Span]],
        roots: set[str],
        pending: list[tuple[str | None, str]],
    ) -> int | None:
        """Convert a line's spans without checking ids one by one; ``None`` leaves it to ``_spans``.

        Nearly every line has only canonical ids (16 lowercase hex characters, as SDKs and the
        Collector write them) and no end before start. The span and parent ids of the whole line
        are checked at once (``canonical_ids``) instead of a ``len``, a ``fromhex`` and a ``lower``
        per id. Anything else (a bad, short, uppercase or base64 id, a time to clamp, a bad trace
        id) sends the line to ``_spans``, which warns and repairs: the result, warnings included, is
        always what ``_spans`` gives, and until then only caches were touched.

        Returns the number of spans kept (every span).
        """
        kept = 0
        sids: list[str] = []
        for spans, _ in batches:
            sids += [sp.span_id for sp in spans]
            kept += len(spans)
        if not canonical_ids(sids):
            return None
        parents: list[str | None] = []
        for spans, _ in batches:
            parents += [sp.parent_span_id for sp in spans]
        # A root has no parent id or an empty one; all zeros (rare) is left to _spans.
        if not canonical_ids(list(filter(None, parents)), zero_ok=False):
            return None
        for spans, resource in batches:
            if not self._fast_spans(spans, resource, style, groups, roots, pending):
                return None
        return kept

    def _fast_spans(
        self,
        spans: list[Any],
        resource: tuple[dict[str, Any], str],
        style: _Style,
        groups: defaultdict[str, list[Span]],
        roots: set[str],
        pending: list[tuple[str | None, str]],
    ) -> bool:
        """``_spans`` without the id checks (``_fast_line`` made them) and without any warning but
        a link's; ``False`` as soon as a span needs one.

        This loop runs once per span: it is kept flat on purpose (no helper calls on the common
        path, locals for everything it looks up). A trace's spans mostly come one after another,
        so the trace id and its group are looked up only when the trace id changes.
        """
        res_attrs, service = resource
        kind_of, status_of = _KIND_OF, _STATUS_OF
        unset = StatusCode.UNSET
        attrs_of = self._attrs[style]
        tids = self._trace_ids
        raw_tid: Any = _NO_ID
        tid = ""
        group: list[Span] = []
        for sp in spans:
            if sp.trace_id != raw_tid:
                raw_tid = sp.trace_id
                known = tids.get(raw_tid)
                if known is None:
                    try:
                        known = tids[raw_tid] = _trace_id(raw_tid)
                    except BadId:
                        return False
                tid = known
                group = groups[tid]
            parent = sp.parent_span_id or None
            start = sp.start_time_unix_nano
            end = sp.end_time_unix_nano or 0
            if end < start or not start:
                return False
            # Subscripts, not get(): misses are rare, and a subscript is cheaper than a call.
            try:
                kind = kind_of[sp.kind]
            except KeyError:
                kind = _enum(sp.kind, _KINDS, _KIND_NAMES, SpanKind.UNSPECIFIED)
            status: StatusCode | None
            st = sp.status
            if st is None:
                status, message = unset, ""
            else:
                status = status_of.get(st.code)
                if status is None:
                    status = _enum(st.code, _STATUSES, _STATUS_NAMES, unset)
                message = st.message or ""
            key = bytes(sp.attributes)
            attrs: dict[str, Any] | None
            try:
                attrs = attrs_of[key]
            except KeyError:
                attrs = self._attributes(key, style)
                if attrs is None:
                    return False  # a bad attribute: _spans salvages the list and warns
            group.append(
                Span(
                    tid,
                    sp.span_id,
                    parent,
                    sp.name or "",
                    kind,
                    start,
                    end,
                    service,
                    status,
                    message,
                    attrs,
                    res_attrs,
                    _events(sp.events) if sp.events else (),
                    _links(sp.links, tid, pending.append) if sp.links else (),
                )
            )
            if parent is None:
                roots.add(tid)
        return True

    def _resource(self, key: bytes, style: _Style) -> tuple[dict[str, Any], str]:
        """Decode a resource's attributes (a cache miss) and pick its service name."""
        res_attrs = attributes(style.attrs.decode(key)) if key else {}
        service = res_attrs.get("service.name")
        resource = (res_attrs, str(service) if service not in (None, "") else "unknown")
        cache = self._resources[style]
        if len(cache) >= ATTRIBUTE_CACHE_SIZE:
            cache.clear()
        cache[key] = resource
        return resource

    def _attributes(self, key: bytes, style: _Style) -> dict[str, Any] | None:
        """Decode a span's attribute list (a cache miss) and remember the dict; ``None`` when the
        list does not validate (never cached: each span using it is salvaged and warned about)."""
        try:
            attrs = attributes(style.attrs.decode(key)) if key else {}
        except msgspec.ValidationError:
            return None
        cache = self._attrs[style]
        if len(cache) >= ATTRIBUTE_CACHE_SIZE:
            cache.clear()
        cache[key] = attrs
        return attrs

    def _spans(
        self,
        spans: list[Any],
        resource: tuple[dict[str, Any], str],
        style: _Style,
        groups: defaultdict[str, list[Span]],
        roots: set[str],
        tids: dict[str | None, str],
        pending: list[tuple[str | None, str]],
    ) -> int:
        """Convert the spans of one scope. This loop runs once per span: it is kept flat on purpose
        (no helper calls on the common path, locals for everything it looks up)."""
        dropped = 0
        res_attrs, service = resource
        kinds, kind_names = _KINDS, _KIND_NAMES
        kind_of, status_of = _KIND_OF, _STATUS_OF
        unspecified, unset = SpanKind.UNSPECIFIED, StatusCode.UNSET
        fromhex = bytes.fromhex
        warn = pending.append
        cache = self._attrs[style]
        get_attrs = cache.get
        for sp in spans:
            # A trace id repeats on every span of its trace: normalise it once (see _trace_ids).
            raw_tid = sp.trace_id
            tid = tids.get(raw_tid)
            if tid is None:
                try:
                    tid = _trace_id(raw_tid)
                except BadId as e:
                    warn((None, f"span {sp.name!r:.60} dropped: field traceId: {e}"))
                    dropped += 1
                    continue
                tids[raw_tid] = tid
            # Fast path for span ids: 16 hex characters (what every SDK and the Collector write).
            # fromhex() validates in C; lower() is cheaper than islower(), which is slow on digits.
            sid = sp.span_id
            try:
                if len(sid) != 16:
                    raise ValueError
                fromhex(sid)
                sid = sid.lower()
            except (ValueError, TypeError):  # TypeError: no span id at all (None)
                try:
                    sid = normalize_id(sid, 8, base64_ok=True)
                except BadId as e:
                    warn((tid, f"span {sp.name!r:.60} dropped: field spanId: {e}"))
                    dropped += 1
                    continue
            parent = sp.parent_span_id
            if parent:
                try:
                    if len(parent) != 16:
                        raise ValueError
                    fromhex(parent)
                    parent = parent.lower()
                except ValueError:
                    try:
                        parent = normalize_id(parent, 8, base64_ok=True)
                    except BadId as e:
                        warn((tid, f"span {sid}: field parentSpanId ignored ({e}); span kept as a root"))
                        parent = None
                if parent == "0000000000000000":
                    parent = None
            else:
                parent = None
            start = sp.start_time_unix_nano
            if not start:
                warn((tid, _ZERO_START))
            end = sp.end_time_unix_nano or 0
            if end < start:
                warn(
                    (
                        tid,
                        f"span {sid}: end before start by {(start - end) / 1e6:.3f} ms; "
                        "clamped to zero duration",
                    )
                )
                end = start
            kind = kind_of.get(sp.kind)
            if kind is None:
                kind = _enum(sp.kind, kinds, kind_names, unspecified)
            status: StatusCode | None
            st = sp.status
            if st is None:
                status, message = unset, ""
            else:
                status = status_of.get(st.code)
                if status is None:
                    status = _enum(st.code, _STATUSES, _STATUS_NAMES, unset)
                message = st.message or ""
            key = bytes(sp.attributes)
            attrs = get_attrs(key)
            if attrs is None:
                attrs = self._attributes(key, style)
                if attrs is None:
                    attrs, problems = salvage_attributes(key, style)
                    for problem in problems:
                        warn((tid, f"span {sid}: {problem}"))
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
                attrs,
                res_attrs,
                _events(sp.events) if sp.events else (),
                _links(sp.links, tid, warn) if sp.links else (),
            )
            groups[tid].append(span)
            if parent is None:
                roots.add(tid)
        return len(spans) - dropped


def _trace_id(raw: str | None) -> str:
    """A trace id as written -> 32 lowercase hex characters (fast path for what SDKs write)."""
    if raw is not None and len(raw) == 32:
        try:
            bytes.fromhex(raw)
            return raw.lower()
        except ValueError:
            pass
    return normalize_id(raw, 16, base64_ok=True)


def _links(links: list[Any], tid: str, warn: Callable[[tuple[str | None, str]], None]) -> tuple[Link, ...]:
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
            warn((tid, f"a link was ignored: {e}"))
    return tuple(out)


def _events(events: list[Any]) -> tuple[Event, ...]:
    out = []
    for ev in events:
        out.append(
            Event(name=ev.name or "", time_ns=ev.time_unix_nano or 0, attributes=attributes(ev.attributes))
        )
    return tuple(out)

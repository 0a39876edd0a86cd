"""The receiver's hot path: OTLP trace requests to Collector-style OTLP/JSON without generic machinery.

Two converters, both written against the OTLP trace schema rather than a message descriptor, because
the per-span cost of the receiver is the conversion and nothing else:

- :func:`request_to_dict` reads a decoded protobuf ``ExportTraceServiceRequest`` field by field (the
  AnyValue oneof through ``WhichOneof``) into the dict ``json_format.MessageToDict`` would give with
  integer enums and hex ids. Keys come in field-number order and default values are omitted, as
  ``ListFields`` does, so the line is byte for byte what ``json_format`` gives.
- :func:`parse_json` validates an OTLP/JSON body with typed msgspec Structs (in C) and normalises the
  few things a valid body may spell differently (hex case, 64-bit integers as numbers, zero
  timestamps); the Structs then encode straight to the line. It is deliberately *strict*: anything it
  is not sure to convert exactly as ``json_format.ParseDict`` would (unknown or snake_case keys,
  ``null``, enum names, quoted numbers other than NaN/Infinity, non-canonical or out-of-range
  integers, several AnyValue kinds at once, ids of the wrong length, other text encodings) raises
  :class:`NotCanonical`, and the caller takes the reference path instead. So the output equals the
  reference's for every body, and valid bodies from real exporters stay fast.

``tests/receiver/test_fastpath.py`` checks both against ``json_format`` on generated messages.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Annotated, Any, Literal, NamedTuple

import msgspec
from msgspec import UNSET, Meta, UnsetType
from msgspec.structs import astuple


class Work(NamedTuple):
    """Per-request work limits (see :class:`tracekit.receiver.limits.Limits`)."""

    max_depth: int = 16
    max_attributes: int = 4096
    max_value_size: int = 1024 * 1024


class TooMuchWork(ValueError):
    """The request is valid OTLP but exceeds a per-request work limit (answered 400)."""


def _too_deep(work: Work) -> TooMuchWork:
    return TooMuchWork(f"attribute values nested deeper than {work.max_depth} levels")


def _too_many(count: int, work: Work) -> TooMuchWork:
    return TooMuchWork(f"{count} attributes on one item, more than the limit of {work.max_attributes}")


def _too_big(size: int, work: Work) -> TooMuchWork:
    return TooMuchWork(f"an attribute value of {size} bytes, more than the limit of {work.max_value_size}")


# -- protobuf message -> dict -----------------------------------------------------------------------


def _double(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _any_value(value: Any, work: Work, depth: int) -> dict[str, Any]:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        text = value.string_value
        if len(text) > work.max_value_size:
            raise _too_big(len(text), work)
        return {"stringValue": text}
    if kind == "int_value":
        return {"intValue": str(value.int_value)}
    if kind == "bool_value":
        return {"boolValue": value.bool_value}
    if kind == "double_value":
        return {"doubleValue": _double(value.double_value)}
    if kind == "array_value":
        if depth >= work.max_depth:
            raise _too_deep(work)
        items = value.array_value.values
        if len(items) > work.max_attributes:
            raise _too_many(len(items), work)
        return {"arrayValue": {"values": [_any_value(v, work, depth + 1) for v in items]} if items else {}}
    if kind == "kvlist_value":
        if depth >= work.max_depth:
            raise _too_deep(work)
        pairs = value.kvlist_value.values
        return {"kvlistValue": {"values": _key_values(pairs, work, depth + 1)} if pairs else {}}
    if kind == "bytes_value":
        blob = value.bytes_value
        if len(blob) > work.max_value_size:
            raise _too_big(len(blob), work)
        return {"bytesValue": base64.b64encode(blob).decode("ascii")}
    if kind == "string_value_strindex":
        return {"stringValueStrindex": value.string_value_strindex}
    return {}


def _key_values(pairs: Any, work: Work, depth: int = 0) -> list[dict[str, Any]]:
    # The hottest loop. Every field read on a upb message costs 50-200 ns, so each is read once, and a
    # non-empty string_value (the common case) is taken as the oneof's kind without a WhichOneof.
    if len(pairs) > work.max_attributes:
        raise _too_many(len(pairs), work)
    limit = work.max_value_size
    out: list[dict[str, Any]] = []
    append = out.append
    for pair in pairs:
        key = pair.key
        if len(key) > limit:
            raise _too_big(len(key), work)
        item: dict[str, Any] = {"key": key} if key else {}
        value = pair.value
        text = value.string_value
        if text:
            if len(text) > limit:
                raise _too_big(len(text), work)
            item["value"] = {"stringValue": text}
        elif value.WhichOneof("value") is not None:
            item["value"] = _any_value(value, work, depth)
        elif pair.HasField("value"):
            item["value"] = {}
        if pair.key_strindex:
            item["keyStrindex"] = pair.key_strindex
        append(item)
    return out


def _attributes(holder: Any, out: dict[str, Any], work: Work) -> None:
    attributes = holder.attributes
    if attributes:
        out["attributes"] = _key_values(attributes, work)
    dropped = holder.dropped_attributes_count
    if dropped:
        out["droppedAttributesCount"] = dropped


def _event(event: Any, work: Work) -> dict[str, Any]:
    out: dict[str, Any] = {}
    time = event.time_unix_nano
    if time:
        out["timeUnixNano"] = str(time)
    name = event.name
    if name:
        out["name"] = name
    _attributes(event, out, work)
    return out


def _link(link: Any, work: Work) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if link.trace_id:
        out["traceId"] = link.trace_id.hex()
    if link.span_id:
        out["spanId"] = link.span_id.hex()
    if link.trace_state:
        out["traceState"] = link.trace_state
    _attributes(link, out, work)
    if link.flags:
        out["flags"] = link.flags
    return out


def _span(span: Any, work: Work) -> dict[str, Any]:
    out: dict[str, Any] = {}
    value: Any = span.trace_id
    if value:
        out["traceId"] = value.hex()
    value = span.span_id
    if value:
        out["spanId"] = value.hex()
    value = span.trace_state
    if value:
        out["traceState"] = value
    value = span.parent_span_id
    if value:
        out["parentSpanId"] = value.hex()
    value = span.name
    if value:
        out["name"] = value
    value = span.kind
    if value:
        out["kind"] = value
    value = span.start_time_unix_nano
    if value:
        out["startTimeUnixNano"] = str(value)
    value = span.end_time_unix_nano
    if value:
        out["endTimeUnixNano"] = str(value)
    _attributes(span, out, work)
    value = span.events
    if value:
        out["events"] = [_event(e, work) for e in value]
    value = span.dropped_events_count
    if value:
        out["droppedEventsCount"] = value
    value = span.links
    if value:
        out["links"] = [_link(link, work) for link in value]
    value = span.dropped_links_count
    if value:
        out["droppedLinksCount"] = value
    if span.HasField("status"):
        status, out["status"] = span.status, {}
        if status.message:
            out["status"]["message"] = status.message
        if status.code:
            out["status"]["code"] = status.code
    value = span.flags
    if value:
        out["flags"] = value
    return out


def _entity_ref(ref: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if ref.schema_url:
        out["schemaUrl"] = ref.schema_url
    if ref.type:
        out["type"] = ref.type
    if ref.id_keys:
        out["idKeys"] = list(ref.id_keys)
    if ref.description_keys:
        out["descriptionKeys"] = list(ref.description_keys)
    return out


def _scope_spans(scope_spans: Any, work: Work) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if scope_spans.HasField("scope"):
        scope, out["scope"] = scope_spans.scope, {}
        if scope.name:
            out["scope"]["name"] = scope.name
        if scope.version:
            out["scope"]["version"] = scope.version
        _attributes(scope, out["scope"], work)
    if scope_spans.spans:
        out["spans"] = [_span(s, work) for s in scope_spans.spans]
    if scope_spans.schema_url:
        out["schemaUrl"] = scope_spans.schema_url
    return out


def _resource_spans(resource_spans: Any, work: Work) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if resource_spans.HasField("resource"):
        resource = resource_spans.resource
        out["resource"] = {}
        _attributes(resource, out["resource"], work)
        if resource.entity_refs:
            out["resource"]["entityRefs"] = [_entity_ref(r) for r in resource.entity_refs]
    if resource_spans.scope_spans:
        out["scopeSpans"] = [_scope_spans(s, work) for s in resource_spans.scope_spans]
    if resource_spans.schema_url:
        out["schemaUrl"] = resource_spans.schema_url
    return out


def request_to_dict(request: Any, work: Work = Work()) -> dict[str, Any]:  # noqa: B008 (immutable)
    """An ``ExportTraceServiceRequest`` as its OTLP/JSON dict (hex ids, int64 as strings, int enums).

    :raises TooMuchWork: past one of ``work``'s limits.
    """
    if not request.resource_spans:
        return {}
    return {"resourceSpans": [_resource_spans(rs, work) for rs in request.resource_spans]}


# -- OTLP/JSON body -> normalised Structs ------------------------------------------------------------


class NotCanonical(ValueError):
    """The fast path cannot vouch for this body; use the reference decoder (which may accept it)."""


_Int32 = Annotated[int, Meta(ge=-(2**31), le=2**31 - 1)]
_UInt32 = Annotated[int, Meta(ge=0, le=2**32 - 1)]
# 64-bit integers: canonical decimal strings short enough to be in range (longer ones, leading zeros or
# signs go to the reference path, which range-checks them), or JSON numbers (normalised to strings).
_UInt64Str = Annotated[str, Meta(pattern=r"\A(?:0|[1-9][0-9]{0,18})\Z")]
_UInt64 = _UInt64Str | Annotated[int, Meta(ge=0, le=2**63 - 1)]  # msgspec bounds fit an int64
_Int64Str = Annotated[str, Meta(pattern=r"\A(?:0|-?[1-9][0-9]{0,18})\Z")]  # 19 digits: see _fix_any
_Int64 = _Int64Str | Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]
# Non-finite doubles are quoted in (proto)JSON, and written back the same way.
_NonFinite = Literal["NaN", "Infinity", "-Infinity"]
# OTLP/JSON ids are hex (either case; written lowercase); empty means unset.
_TraceId = Annotated[str, Meta(pattern=r"\A(?:[0-9a-fA-F]{32})?\Z")]
_SpanId = Annotated[str, Meta(pattern=r"\A(?:[0-9a-fA-F]{16})?\Z")]


class _Otlp(msgspec.Struct, rename="camel", omit_defaults=True, forbid_unknown_fields=True):
    """Field order = protobuf field number order, which is the order the reference writes keys in."""


class AnyValue(_Otlp):
    string_value: str | UnsetType = UNSET
    bool_value: bool | UnsetType = UNSET
    int_value: _Int64 | UnsetType = UNSET
    double_value: float | _NonFinite | UnsetType = UNSET
    array_value: ArrayValue | UnsetType = UNSET
    kvlist_value: KeyValueList | UnsetType = UNSET
    bytes_value: str | UnsetType = UNSET
    string_value_strindex: _Int32 | UnsetType = UNSET


class ArrayValue(_Otlp):
    values: list[AnyValue] = []


class KeyValue(_Otlp):
    key: str = ""
    value: AnyValue | UnsetType = UNSET
    key_strindex: _Int32 = 0


class KeyValueList(_Otlp):
    values: list[KeyValue] = []


class EntityRef(_Otlp):
    schema_url: str = ""
    type: str = ""
    id_keys: list[str] = []
    description_keys: list[str] = []


class Resource(_Otlp):
    attributes: list[KeyValue] = []
    dropped_attributes_count: _UInt32 = 0
    entity_refs: list[EntityRef] = []


class InstrumentationScope(_Otlp):
    name: str = ""
    version: str = ""
    attributes: list[KeyValue] = []
    dropped_attributes_count: _UInt32 = 0


class Event(_Otlp):
    time_unix_nano: _UInt64 | UnsetType = UNSET
    name: str = ""
    attributes: list[KeyValue] = []
    dropped_attributes_count: _UInt32 = 0


class Link(_Otlp):
    trace_id: _TraceId = ""
    span_id: _SpanId = ""
    trace_state: str = ""
    attributes: list[KeyValue] = []
    dropped_attributes_count: _UInt32 = 0
    flags: _UInt32 = 0


class Status(_Otlp):
    message: str = ""
    code: _Int32 = 0


class Span(_Otlp):
    trace_id: _TraceId = ""
    span_id: _SpanId = ""
    trace_state: str = ""
    parent_span_id: _SpanId = ""
    name: str = ""
    kind: _Int32 = 0
    start_time_unix_nano: _UInt64 | UnsetType = UNSET
    end_time_unix_nano: _UInt64 | UnsetType = UNSET
    attributes: list[KeyValue] = []
    dropped_attributes_count: _UInt32 = 0
    events: list[Event] = []
    dropped_events_count: _UInt32 = 0
    links: list[Link] = []
    dropped_links_count: _UInt32 = 0
    status: Status | UnsetType = UNSET
    flags: _UInt32 = 0


class ScopeSpans(_Otlp):
    scope: InstrumentationScope | UnsetType = UNSET
    spans: list[Span] = []
    schema_url: str = ""


class ResourceSpans(_Otlp):
    resource: Resource | UnsetType = UNSET
    scope_spans: list[ScopeSpans] = []
    schema_url: str = ""


class Request(_Otlp):
    """``ExportTraceServiceRequest`` in OTLP/JSON, normalised by :func:`parse_json`."""

    resource_spans: list[ResourceSpans] = []


#: The Structs standing for each OTLP message (tests compare their fields with the descriptors).
STRUCTS = {
    "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest": Request,
    "opentelemetry.proto.trace.v1.ResourceSpans": ResourceSpans,
    "opentelemetry.proto.trace.v1.ScopeSpans": ScopeSpans,
    "opentelemetry.proto.trace.v1.Span": Span,
    "opentelemetry.proto.trace.v1.Span.Event": Event,
    "opentelemetry.proto.trace.v1.Span.Link": Link,
    "opentelemetry.proto.trace.v1.Status": Status,
    "opentelemetry.proto.resource.v1.Resource": Resource,
    "opentelemetry.proto.common.v1.InstrumentationScope": InstrumentationScope,
    "opentelemetry.proto.common.v1.EntityRef": EntityRef,
    "opentelemetry.proto.common.v1.KeyValue": KeyValue,
    "opentelemetry.proto.common.v1.KeyValueList": KeyValueList,
    "opentelemetry.proto.common.v1.ArrayValue": ArrayValue,
    "opentelemetry.proto.common.v1.AnyValue": AnyValue,
}

_decoder = msgspec.json.Decoder(Request)
_ONE_SET = len(AnyValue.__struct_fields__) - 1


def _uint64(value: Any) -> Any:
    """A timestamp as the reference writes it: a decimal string, or absent when zero."""
    if value.__class__ is int:
        value = str(value)
    return UNSET if value == "0" else value


def _fix_any(value: AnyValue, work: Work, depth: int) -> None:
    unset = astuple(value).count(UNSET)
    if unset != _ONE_SET:
        if unset == _ONE_SET + 1:
            return  # an empty AnyValue stays {}
        raise NotCanonical("several AnyValue kinds at once")
    text = value.string_value
    if text is not UNSET:
        if len(text) > work.max_value_size:
            raise _too_big(len(text), work)
        return
    if value.bool_value is not UNSET:
        return
    number = value.int_value
    if number is not UNSET:
        if isinstance(number, int):
            value.int_value = str(number)
        elif len(number) > 18 and not -(2**63) <= int(number) < 2**63:
            raise NotCanonical("intValue out of the int64 range")
    elif value.array_value is not UNSET:
        if depth >= work.max_depth:
            raise _too_deep(work)
        items = value.array_value.values
        if len(items) > work.max_attributes:
            raise _too_many(len(items), work)
        for item in items:
            _fix_any(item, work, depth + 1)
    elif value.kvlist_value is not UNSET:
        if depth >= work.max_depth:
            raise _too_deep(work)
        _fix_key_values(value.kvlist_value.values, work, depth + 1)
    elif value.bytes_value is not UNSET:
        if len(value.bytes_value) > work.max_value_size * 4 // 3 + 4:
            raise _too_big(len(value.bytes_value) * 3 // 4, work)
        # json_format reads bytes as padded URL-safe base64 (either alphabet); written back standard.
        raw = value.bytes_value.encode()
        try:
            decoded = base64.urlsafe_b64decode(raw + b"=" * (4 - len(raw) % 4))
        except (binascii.Error, ValueError):
            raise NotCanonical("bytesValue is not base64") from None
        value.bytes_value = base64.b64encode(decoded).decode("ascii")
    # double_value: a finite number (msgspec refuses bare NaN, Infinity and out-of-range numbers, as
    # json_format does) or one of the three quoted spellings, kept as they are.


def _fix_key_values(pairs: list[KeyValue], work: Work, depth: int = 0) -> None:
    if len(pairs) > work.max_attributes:
        raise _too_many(len(pairs), work)
    for pair in pairs:
        if len(pair.key) > work.max_value_size:
            raise _too_big(len(pair.key), work)
        if pair.value is not UNSET:
            _fix_any(pair.value, work, depth)


def parse_json(body: bytes | bytearray, work: Work = Work()) -> Request:  # noqa: B008 (immutable)
    """Validate and normalise an OTLP/JSON trace body; :class:`NotCanonical` if it needs the reference.

    :raises TooMuchWork: past one of ``work``'s limits.
    """
    try:
        request = _decoder.decode(body)
    except msgspec.DecodeError as exc:  # ValidationError included
        raise NotCanonical(str(exc)) from None
    for resource_spans in request.resource_spans:
        if resource_spans.resource is not UNSET:
            _fix_key_values(resource_spans.resource.attributes, work)
        for scope_spans in resource_spans.scope_spans:
            if scope_spans.scope is not UNSET:
                _fix_key_values(scope_spans.scope.attributes, work)
            for span in scope_spans.spans:
                span.trace_id = span.trace_id.lower()
                span.span_id = span.span_id.lower()
                span.parent_span_id = span.parent_span_id.lower()
                span.start_time_unix_nano = _uint64(span.start_time_unix_nano)
                span.end_time_unix_nano = _uint64(span.end_time_unix_nano)
                _fix_key_values(span.attributes, work)
                for event in span.events:
                    event.time_unix_nano = _uint64(event.time_unix_nano)
                    _fix_key_values(event.attributes, work)
                for link in span.links:
                    link.trace_id = link.trace_id.lower()
                    link.span_id = link.span_id.lower()
                    _fix_key_values(link.attributes, work)
    return request


def count_spans(request: Request) -> int:
    return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)


def trace_ids(request: Request) -> set[str]:
    return {span.trace_id for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans}


__all__ = [
    "STRUCTS",
    "NotCanonical",
    "Request",
    "TooMuchWork",
    "Work",
    "count_spans",
    "parse_json",
    "request_to_dict",
    "trace_ids",
]

"""The receiver's fast converters agree with protobuf's json_format on generated requests.

- protobuf input: ``codec.to_otlp_dict`` (field-by-field reads) == ``to_otlp_dict_reference``
  (``json_format.MessageToDict``), compared as encoded lines so key order counts too;
- OTLP/JSON input: ``codec.ingest`` (msgspec Structs, falling back to ``json_format.ParseDict``) writes
  the same line as ``ParseDict`` + the reference, or refuses the body exactly when ``ParseDict`` does,
  for the canonical encoding of each generated request and for variants of it (upper-case ids,
  numbers for 64-bit integers, explicit defaults, shuffled keys, unknown fields, nulls, enum names,
  snake_case keys, several AnyValue kinds at once, non-canonical integers).
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from google.protobuf.descriptor import Descriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    EntityRef,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from tests.receiver.test_receiver import make_spans
from tracekit.receiver import codec, fastpath

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- strategies: protobuf messages ------------------------------------------------------------------

texts = st.text(max_size=6)
uint32 = st.integers(0, 2**32 - 1) | st.just(0)
uint64 = st.integers(0, 2**64 - 1) | st.just(0)
ids = st.one_of(st.just(b""), st.binary(min_size=16, max_size=16), st.binary(min_size=8, max_size=8))
odd_ids = st.binary(
    max_size=20
)  # protobuf carries any length; the JSON path must refuse what json_format does


def _message(cls: type, **fields: Any) -> Any:
    return cls(**{k: v for k, v in fields.items() if v is not None})


any_values: st.SearchStrategy[AnyValue] = st.deferred(
    lambda: st.one_of(
        st.just(AnyValue()),
        texts.map(lambda v: AnyValue(string_value=v)),
        st.booleans().map(lambda v: AnyValue(bool_value=v)),
        st.integers(-(2**63), 2**63 - 1).map(lambda v: AnyValue(int_value=v)),
        st.floats().map(lambda v: AnyValue(double_value=v)),
        st.binary(max_size=12).map(lambda v: AnyValue(bytes_value=v)),
        st.lists(any_values, max_size=3).map(lambda v: AnyValue(array_value=ArrayValue(values=v))),
        st.lists(key_values, max_size=3).map(lambda v: AnyValue(kvlist_value=KeyValueList(values=v))),
        st.integers(-(2**31), 2**31 - 1).map(lambda v: AnyValue(string_value_strindex=v)),
    )
)
key_values: st.SearchStrategy[KeyValue] = st.builds(
    lambda key, value, strindex: _message(KeyValue, key=key, value=value, key_strindex=strindex),
    texts,
    st.none() | any_values,
    st.just(0) | st.integers(-(2**31), 2**31 - 1),
)
attributes = st.lists(key_values, max_size=4)
events = st.builds(
    lambda t, name, attrs, dropped: Span.Event(
        time_unix_nano=t, name=name, attributes=attrs, dropped_attributes_count=dropped
    ),
    uint64,
    texts,
    attributes,
    uint32,
)
links = st.builds(
    lambda tid, sid, state, attrs, dropped, flags: Span.Link(
        trace_id=tid,
        span_id=sid,
        trace_state=state,
        attributes=attrs,
        dropped_attributes_count=dropped,
        flags=flags,
    ),
    ids,
    ids | odd_ids,
    texts,
    attributes,
    uint32,
    uint32,
)
statuses = st.none() | st.builds(
    lambda message, code: Status(message=message, code=code), texts, st.integers(0, 2) | st.integers(-9, 99)
)


@st.composite
def spans(draw: st.DrawFn) -> Span:
    return _message(
        Span,
        trace_id=draw(ids | odd_ids),
        span_id=draw(ids),
        trace_state=draw(texts),
        parent_span_id=draw(ids),
        name=draw(texts),
        kind=draw(st.integers(0, 5) | st.integers(-(2**31), 2**31 - 1)),
        start_time_unix_nano=draw(uint64),
        end_time_unix_nano=draw(uint64),
        attributes=draw(attributes),
        dropped_attributes_count=draw(uint32),
        events=draw(st.lists(events, max_size=2)),
        dropped_events_count=draw(uint32),
        links=draw(st.lists(links, max_size=2)),
        dropped_links_count=draw(uint32),
        status=draw(statuses),
        flags=draw(uint32),
    )


entity_refs = st.builds(
    lambda url, kind, id_keys, description_keys: EntityRef(
        schema_url=url, type=kind, id_keys=id_keys, description_keys=description_keys
    ),
    texts,
    texts,
    st.lists(texts, max_size=2),
    st.lists(texts, max_size=2),
)
resources = st.none() | st.builds(
    lambda attrs, dropped, refs: Resource(
        attributes=attrs, dropped_attributes_count=dropped, entity_refs=refs
    ),
    attributes,
    uint32,
    st.lists(entity_refs, max_size=2),
)
scopes = st.none() | st.builds(
    lambda name, version, attrs, dropped: InstrumentationScope(
        name=name, version=version, attributes=attrs, dropped_attributes_count=dropped
    ),
    texts,
    texts,
    attributes,
    uint32,
)
scope_spans = st.builds(
    lambda scope, spans_, url: _message(ScopeSpans, scope=scope, spans=spans_, schema_url=url),
    scopes,
    st.lists(spans(), max_size=3),
    texts,
)
resource_spans = st.builds(
    lambda resource, scopes_, url: _message(
        ResourceSpans, resource=resource, scope_spans=scopes_, schema_url=url
    ),
    resources,
    st.lists(scope_spans, max_size=2),
    texts,
)
requests_ = st.builds(
    lambda rs: ExportTraceServiceRequest(resource_spans=rs), st.lists(resource_spans, max_size=2)
)


def reference_line(request: ExportTraceServiceRequest) -> bytes:
    return msgspec.json.encode(codec.to_otlp_dict_reference(request))


# -- protobuf input --------------------------------------------------------------------------------


@pytest.mark.slow
@SETTINGS
@given(requests_)
def test_protobuf_conversion_matches_json_format(request: ExportTraceServiceRequest) -> None:
    assert codec.to_otlp_json(request) == reference_line(request)
    batch = codec.ingest(request.SerializeToString(), codec.PROTOBUF)
    assert batch.otlp_json() == reference_line(request)
    assert batch.spans == codec.count_spans(request)
    assert batch.trace_ids() == codec.trace_ids(request)


# -- OTLP/JSON input -------------------------------------------------------------------------------


def _reference_ingest(body: bytes) -> bytes | None:
    """Today's JSON path: hex ids to base64, ``json_format.ParseDict``, MessageToDict; None if refused."""
    try:
        return reference_line(codec.decode(body, codec.JSON))
    except codec.PayloadError:
        return None


def _fast_ingest(body: bytes) -> bytes | None:
    try:
        return codec.ingest(body, codec.JSON).otlp_json()
    except codec.PayloadError:
        return None


def _walk(node: Any, visit: Any, parent: str = "") -> Any:
    """Rebuild a JSON tree bottom-up, calling ``visit(obj, parent_key)`` on every object."""
    if isinstance(node, list):
        return [_walk(item, visit, parent) for item in node]
    if isinstance(node, dict):
        return visit({key: _walk(value, visit, key) for key, value in node.items()}, parent)
    return node


_ID_KEYS = ("traceId", "spanId", "parentSpanId")
_INT64_KEYS = ("intValue", "startTimeUnixNano", "endTimeUnixNano", "timeUnixNano")
#: Default values a writer may spell out, by the key holding the object; json_format drops them.
_DEFAULTS = {
    "spans": {
        "traceState": "",
        "kind": 0,
        "startTimeUnixNano": "0",
        "endTimeUnixNano": 0,
        "droppedAttributesCount": 0,
        "events": [],
        "droppedEventsCount": 0,
        "droppedLinksCount": 0,
        "flags": 0,
        "parentSpanId": "",
    },
    "events": {"timeUnixNano": "0", "name": "", "attributes": []},
    "links": {"traceState": "", "flags": 0, "droppedAttributesCount": 0, "spanId": ""},
    "attributes": {"keyStrindex": 0, "key": ""},
    "scopeSpans": {"schemaUrl": "", "spans": []},
    "status": {"code": 0, "message": ""},
}


def _upper_ids(obj: dict[str, Any], parent: str) -> dict[str, Any]:
    return {k: v.upper() if k in _ID_KEYS and isinstance(v, str) else v for k, v in obj.items()}


def _int64_numbers(obj: dict[str, Any], parent: str) -> dict[str, Any]:
    return {k: int(v) if k in _INT64_KEYS and str(v).lstrip("-").isdigit() else v for k, v in obj.items()}


def _explicit_defaults(obj: dict[str, Any], parent: str) -> dict[str, Any]:
    return {**_DEFAULTS.get(parent, {}), **obj}


def _reversed_keys(obj: dict[str, Any], parent: str) -> dict[str, Any]:
    return dict(reversed(obj.items()))


def _unknown_field(obj: dict[str, Any], parent: str) -> dict[str, Any]:
    return {**obj, "fieldFromANewerVersion": {"x": 1}} if parent == "spans" else obj


def _nulls(obj: dict[str, Any], parent: str) -> dict[str, Any]:
    return {**obj, "status": None} if parent == "spans" else obj


def _enum_names(obj: dict[str, Any], parent: str) -> dict[str, Any]:
    return {**obj, "kind": "SPAN_KIND_SERVER"} if parent == "spans" else obj


def _snake_case(obj: dict[str, Any], parent: str) -> dict[str, Any]:
    renames = {"traceId": "trace_id", "droppedAttributesCount": "dropped_attributes_count"}
    return {renames.get(k, k): v for k, v in obj.items()}


def _two_kinds(obj: dict[str, Any], parent: str) -> dict[str, Any]:
    return {**obj, "boolValue": True} if "stringValue" in obj or "intValue" in obj else obj


def _leading_zeros(obj: dict[str, Any], parent: str) -> dict[str, Any]:
    return {k: f"0{v}" if k in _INT64_KEYS else v for k, v in obj.items()}


VARIANTS = [
    _upper_ids,
    _int64_numbers,
    _explicit_defaults,
    _reversed_keys,
    _unknown_field,
    _nulls,
    _enum_names,
    _snake_case,
    _two_kinds,
    _leading_zeros,
]


@pytest.mark.slow
@SETTINGS
@given(requests_, st.lists(st.sampled_from(VARIANTS), min_size=1, max_size=3))
def test_json_input_matches_json_format(request: ExportTraceServiceRequest, variants: list[Any]) -> None:
    canonical = codec.to_otlp_dict_reference(request)
    body = msgspec.json.encode(canonical)
    assert _fast_ingest(body) == _reference_ingest(body)
    for variant in variants:
        canonical = _walk(canonical, variant)
    varied = msgspec.json.encode(canonical)
    assert _fast_ingest(varied) == _reference_ingest(varied)


@pytest.mark.slow
@SETTINGS
@given(requests_)
def test_canonical_json_takes_the_fast_path(request: ExportTraceServiceRequest) -> None:
    """Every body json_format accepts, in the canonical encoding, is handled without json_format."""
    body = msgspec.json.encode(codec.to_otlp_dict_reference(request))
    reference = _reference_ingest(body)
    if reference is None:  # ids of the wrong length
        return
    assert msgspec.json.encode(fastpath.parse_json(body)) == reference


def test_exporter_json_takes_the_fast_path_and_forwards() -> None:
    expected = encode_spans(make_spans())
    body = codec.to_otlp_json(expected)
    fastpath.parse_json(body)  # no NotCanonical
    batch = codec.ingest(body, codec.JSON)
    assert batch.otlp_json() == body
    assert batch.spans == 3 and batch.trace_ids() == codec.trace_ids(expected)
    assert batch.message() == expected  # what --forward sends on


@pytest.mark.parametrize(
    "body",
    [
        b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5B8EFFF798038103D269B633813FC60C"}]}]}]}',
        b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":18446744073709551615}]}]}]}',
        b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"18446744073709551616"}]}]}]}',
        b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"k","value":{"intValue":1.0}}]}]}]}]}',
        b'{"resourceSpans":[{"resource":{"attributes":[{"key":"b","value":{"bytesValue":"-_8"}}]}}]}',
        b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"value":{"doubleValue":1e400}}]}]}]}]}',
        b'{"resourceSpans":[{"resource":{"attributes":[{"value":{"doubleValue":"inf"}}]}}]}',
        b'{"resourceSpans":[{"resource":{"attributes":[{"value":{"doubleValue":"-Infinity"}}]}}]}',
        b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"\\ud800"}]}]}]}',
        b'\xef\xbb\xbf{"resourceSpans":[]}',
        b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":true}]}]}]}',
        b'{"resourceSpans":[{"resource":{"attributes":[{"value":{"intValue":"9223372036854775807"}}]}}]}',
        b'{"resourceSpans":[{"resource":{"attributes":[{"value":{"intValue":"-9223372036854775809"}}]}}]}',
        b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"a","name":"b"}]}]}]}',
        b'{"resourceSpans":[{"resource":{"attributes":[{"value":{"stringValue":"a","intValue":"1"}}]}}]}',
        b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"0","endTimeUnixNano":0}]}]}]}',
        b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"events":[{"timeUnixNano":"0"}],"status":{}}]}]}]}',
    ],
    ids=[
        "upper-hex",
        "uint64-max-number",
        "uint64-overflow",
        "float-int",
        "urlsafe-bytes",
        "huge-double",
        "python-inf",
        "quoted-infinity",
        "lone-surrogate",
        "bom",
        "bool-enum",
        "int64-max",
        "int64-underflow",
        "duplicate-key",
        "two-kinds",
        "zero-times",
        "zero-event-time",
    ],
)
def test_json_edge_cases_match_json_format(body: bytes) -> None:
    assert _fast_ingest(body) == _reference_ingest(body)


def _descriptors(descriptor: Descriptor, seen: dict[str, Descriptor]) -> dict[str, Descriptor]:
    if descriptor.full_name not in seen:
        seen[descriptor.full_name] = descriptor
        for field in descriptor.fields:
            if field.message_type is not None:
                _descriptors(field.message_type, seen)
    return seen


def test_structs_mirror_the_proto_schema() -> None:
    """Every OTLP trace message has a Struct with its JSON field names in field-number order.

    A newer opentelemetry-proto that adds a field fails here rather than sending that field's
    bodies down the slow path unnoticed.
    """
    messages = _descriptors(ExportTraceServiceRequest.DESCRIPTOR, {})
    assert set(messages) == set(fastpath.STRUCTS)
    for name, descriptor in messages.items():
        fields = [f.json_name for f in sorted(descriptor.fields, key=lambda f: f.number)]
        assert list(fastpath.STRUCTS[name].__struct_encode_fields__) == fields, name

"""OTLP/HTTP trace payloads in and out: protobuf, OTLP JSON, gzip, and the error body.

Decoding goes through the OpenTelemetry proto package (``ExportTraceServiceRequest``) and, for OTLP
JSON, through typed msgspec Structs mirroring that schema (:mod:`tracekit.receiver.fastpath`), with
``google.protobuf.json_format`` as the reference and the fallback: tracekit never parses OTLP by hand.
What this module adds is the part of the OTLP/JSON mapping protobuf's generic JSON mapping gets wrong:
trace and span ids are *hex* strings in OTLP/JSON, where ``json_format`` would read and write base64
(the OTLP specification calls this out as the one deviation from the standard protobuf JSON mapping).

The JSON written is the shape the OpenTelemetry Collector's file exporter writes, one
``ExportTraceServiceRequest`` per line: lowerCamelCase keys, hex ids, enums as integers, 64-bit integers
as strings, default values omitted.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterator
from typing import Any

import msgspec
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tracekit.receiver import fastpath

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
#: Media types accepted for a request body, mapped to the one we answer with.
MEDIA_TYPES = {PROTOBUF: PROTOBUF, "application/protobuf": PROTOBUF, JSON: JSON}

#: (key holding a list of objects, id fields of those objects) along the OTLP trace tree.
_ID_FIELDS = {"spans": ("traceId", "spanId", "parentSpanId"), "links": ("traceId", "spanId")}
_ID_BYTES = {"traceId": 16, "spanId": 8, "parentSpanId": 8}


class PayloadError(ValueError):
    """The body cannot be used; ``status`` is the HTTP status to answer (400 or 413)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def media_type(content_type: str | None) -> str | None:
    """The canonical media type of a Content-Type header (parameters dropped), or None if unsupported."""
    if not content_type:
        return None
    return MEDIA_TYPES.get(content_type.split(";", 1)[0].strip().lower())


def gunzip(body: bytes, limit: int) -> bytes:
    """Decompress a gzip body, refusing to produce more than ``limit`` bytes.

    Decompression is incremental with ``max_length``, so a gzip bomb costs at most ``limit`` bytes of
    memory before it is refused, never its full expansion.
    """
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out: list[bytes] = []
    size = 0
    data = body
    try:
        while True:
            chunk = inflater.decompress(data, limit + 1 - size)
            size += len(chunk)
            out.append(chunk)
            if size > limit:
                raise PayloadError(f"decompressed body exceeds the {limit}-byte limit", status=413)
            data = inflater.unconsumed_tail
            if not data:
                break
        if not inflater.eof:
            raise PayloadError("gzip body is truncated")
    except zlib.error as exc:
        raise PayloadError(f"gzip body is invalid: {exc}") from None
    return b"".join(out)


def _walk_id_holders(request: dict[str, Any]) -> Iterator[tuple[dict[str, Any], tuple[str, ...]]]:
    for resource_spans in request.get("resourceSpans") or ():
        for scope_spans in resource_spans.get("scopeSpans") or ():
            for span in scope_spans.get("spans") or ():
                yield span, _ID_FIELDS["spans"]
                for link in span.get("links") or ():
                    yield link, _ID_FIELDS["links"]


def _hex_to_b64(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise PayloadError(f"{field} must be a hex string, got {type(value).__name__}")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise PayloadError(f"{field} is not hex: {value[:40]!r}") from None
    if raw and len(raw) != _ID_BYTES[field]:
        raise PayloadError(f"{field} must be {_ID_BYTES[field] * 2} hex digits, got {len(value)}")
    return base64.b64encode(raw).decode("ascii")


def decode(body: bytes, media: str) -> ExportTraceServiceRequest:
    """Decode an (already decompressed) OTLP/HTTP trace body of the given canonical media type."""
    request = ExportTraceServiceRequest()
    if media == PROTOBUF:
        try:
            request.ParseFromString(body)
        except DecodeError as exc:
            raise PayloadError(f"protobuf body is not an ExportTraceServiceRequest: {exc}") from None
        return request
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(f"JSON body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PayloadError("JSON body must be an object (ExportTraceServiceRequest)")
    try:
        for holder, fields in _walk_id_holders(data):
            for field in fields:
                if field in holder:
                    holder[field] = _hex_to_b64(holder[field], field)
        json_format.ParseDict(data, request, ignore_unknown_fields=True)
    except (json_format.ParseError, AttributeError, TypeError) as exc:
        raise PayloadError(f"JSON body is not an ExportTraceServiceRequest: {exc}") from None
    return request


def to_otlp_dict(request: ExportTraceServiceRequest) -> dict[str, Any]:
    """The OTLP/JSON form of a request as a plain dict (hex ids, camelCase, int64 as strings).

    It gives what ``json_format.MessageToDict(request, use_integers_for_enums=True)`` gives, with ids
    in hex, but reads the OTLP trace fields by name (:func:`tracekit.receiver.fastpath.request_to_dict`)
    instead of walking descriptors: this is the receiver's main cost per span. ``tests/receiver``
    checks the two agree on generated requests.
    """
    return fastpath.request_to_dict(request)


def to_otlp_dict_reference(request: ExportTraceServiceRequest) -> dict[str, Any]:
    """The same as :func:`to_otlp_dict` through ``json_format.MessageToDict`` (slower; for tests)."""
    data = json_format.MessageToDict(request, use_integers_for_enums=True)
    for holder, fields in _walk_id_holders(data):
        for field in fields:
            value = holder.get(field)
            if value:
                holder[field] = base64.b64decode(value).hex()
    return data


_encoder = msgspec.json.Encoder()


def to_otlp_json(request: ExportTraceServiceRequest) -> bytes:
    """One OTLP/JSON line (without the newline), as the Collector's file exporter writes it."""
    return _encoder.encode(to_otlp_dict(request))


def from_otlp_json(line: bytes | str) -> ExportTraceServiceRequest:
    """Parse one OTLP/JSON line back into the protobuf message (inverse of :func:`to_otlp_json`)."""
    return decode(line.encode() if isinstance(line, str) else line, JSON)


def count_spans(request: ExportTraceServiceRequest) -> int:
    return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)


def trace_ids(request: ExportTraceServiceRequest) -> set[str]:
    """The hex trace ids present in a request."""
    return {
        span.trace_id.hex() for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans
    }


class Batch:
    """One accepted request, in the form the receiver needs: span count, trace ids, the OTLP/JSON line.

    A protobuf body is held as the decoded message; a canonical OTLP/JSON body as the normalised
    msgspec Structs of :mod:`tracekit.receiver.fastpath` (a protobuf message is built only to forward
    it). Both give the same line for the same spans.
    """

    __slots__ = ("_json", "_line", "_message")

    def __init__(
        self, message: ExportTraceServiceRequest | None = None, json: fastpath.Request | None = None
    ) -> None:
        self._message = message
        self._json = json
        self._line: bytes | None = None

    @property
    def spans(self) -> int:
        if self._json is not None:
            return fastpath.count_spans(self._json)
        return count_spans(self.message())

    def trace_ids(self) -> set[str]:
        if self._json is not None:
            return fastpath.trace_ids(self._json)
        return trace_ids(self.message())

    def otlp_json(self) -> bytes:
        """The OTLP/JSON line (without the newline), as the Collector's file exporter writes it."""
        if self._line is None:
            self._line = (
                _encoder.encode(self._json) if self._json is not None else to_otlp_json(self.message())
            )
        return self._line

    def protobuf(self) -> bytes:
        """The request as a protobuf body (what ``--forward`` sends)."""
        return self.message().SerializeToString()

    def message(self) -> ExportTraceServiceRequest:
        """The protobuf message (for a JSON body, parsed from the line through json_format: slow)."""
        if self._message is None:
            self._message = from_otlp_json(self.otlp_json())
        return self._message


def ingest(body: bytes, media: str) -> Batch:
    """Decode an (already decompressed) OTLP/HTTP trace body for the receiver.

    OTLP/JSON takes the strict fast path (:func:`tracekit.receiver.fastpath.parse_json`) and falls
    back to :func:`decode` (``json_format``, which also words the error for a malformed body) for
    anything the fast path cannot vouch for.
    """
    if media == JSON:
        try:
            return Batch(json=fastpath.parse_json(body))
        except fastpath.NotCanonical:
            pass
    return Batch(message=decode(body, media))


def success_body(media: str) -> bytes:
    response = ExportTraceServiceResponse()
    if media == JSON:
        return _encoder.encode(json_format.MessageToDict(response))
    return response.SerializeToString()


#: HTTP status -> google.rpc.Code carried in the error body.
_RPC_CODES = {400: 3, 404: 5, 405: 12, 411: 3, 413: 8, 415: 3, 500: 13, 503: 14}


def status_body(http_status: int, message: str, media: str) -> bytes:
    """An OTLP error body: a ``google.rpc.Status`` in the request's encoding (OTLP/HTTP spec)."""
    status = status_pb2.Status(code=_RPC_CODES.get(http_status, 2), message=message)
    if media == JSON:
        return _encoder.encode(json_format.MessageToDict(status))
    return status.SerializeToString()


__all__ = [
    "JSON",
    "PROTOBUF",
    "Batch",
    "PayloadError",
    "count_spans",
    "decode",
    "from_otlp_json",
    "gunzip",
    "ingest",
    "media_type",
    "status_body",
    "success_body",
    "to_otlp_dict",
    "to_otlp_dict_reference",
    "to_otlp_json",
    "trace_ids",
]

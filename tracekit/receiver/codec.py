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
from collections.abc import Callable, Iterator
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


#: Bytes inflated per step: a request holds at most this much decompressed output it has not paid
#: for in the memory budget.
GUNZIP_STEP = 1024 * 1024


def gunzip(body: bytes | bytearray, limit: int, reserve: Callable[[int], None] | None = None) -> bytearray:
    """Decompress a gzip body of one or more members (RFC 1952 allows several; ``gzip`` writes one
    per call, ``cat a.gz b.gz`` two), refusing to produce more than ``limit`` bytes.

    Decompression is incremental, :data:`GUNZIP_STEP` at a time, and ``reserve(n)`` is called before
    each step may grow the output by ``n`` bytes, and with a negative ``n`` for what a step did not use
    (the receiver's memory budget; it raises to stop), so
    a gzip bomb costs at most ``limit`` bytes before it is refused, never its full expansion.
    Zero bytes after the last member are ignored, as ``gzip -d`` does; anything else there is refused.
    """
    out = bytearray()
    data: bytes | bytearray = body
    try:
        while True:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            while True:
                step = min(GUNZIP_STEP, limit + 1 - len(out))
                if reserve is not None:
                    reserve(step)
                chunk = inflater.decompress(data, step)
                out += chunk
                if reserve is not None and len(chunk) < step:
                    reserve(len(chunk) - step)  # give back what this step did not use
                if len(out) > limit:
                    raise PayloadError(f"decompressed body exceeds the {limit}-byte limit", status=413)
                data = inflater.unconsumed_tail
                if inflater.eof or (not data and len(chunk) < step):
                    break  # the member ended, or it needs input there is none of
            if not inflater.eof:
                raise PayloadError("gzip body is truncated")
            data = inflater.unused_data
            if not data.strip(b"\0"):
                return out
    except zlib.error as exc:
        raise PayloadError(f"gzip body is invalid: {exc}") from None


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


def decode(body: bytes | bytearray, media: str) -> ExportTraceServiceRequest:
    """Decode an (already decompressed) OTLP/HTTP trace body of the given canonical media type."""
    request = ExportTraceServiceRequest()
    if media == PROTOBUF:
        try:
            request.ParseFromString(bytes(body))  # no copy for bytes; protobuf types take bytes only
        except DecodeError as exc:
            raise PayloadError(f"protobuf body is not an ExportTraceServiceRequest: {exc}") from None
        return request
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(f"JSON body is not valid JSON: {exc}") from None
    except RecursionError:
        raise PayloadError("JSON body is nested too deeply to read") from None
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
    except RecursionError:
        raise PayloadError("JSON body is nested too deeply to read") from None
    return request


def to_otlp_dict(request: ExportTraceServiceRequest) -> dict[str, Any]:
    """The OTLP/JSON form of a request as a plain dict (hex ids, camelCase, int64 as strings).

    It gives what ``json_format.MessageToDict(request, use_integers_for_enums=True)`` gives, with ids
    in hex, but reads the OTLP trace fields by name (:func:`tracekit.receiver.fastpath.request_to_dict`)
    instead of walking descriptors: this is the receiver's main cost per span. ``tests/receiver``
    checks the two agree on generated requests.
    """
    return fastpath.request_to_dict(request, _NO_WORK_LIMITS)


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
_NO_WORK_LIMITS = fastpath.Work(max_depth=10**9, max_attributes=10**12, max_value_size=10**15)


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

    __slots__ = ("_json", "_line", "_message", "_work")

    def __init__(
        self,
        message: ExportTraceServiceRequest | None = None,
        json: fastpath.Request | None = None,
        work: fastpath.Work = _NO_WORK_LIMITS,
    ) -> None:
        self._message = message
        self._json = json
        self._line: bytes | None = None
        self._work = work

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
            if self._json is not None:
                self._line = _encoder.encode(self._json)
            else:
                self._line = _encoder.encode(fastpath.request_to_dict(self.message(), self._work))
        return self._line

    def protobuf(self) -> bytes:
        """The request as a protobuf body (what ``--forward`` sends)."""
        return self.message().SerializeToString()

    def message(self) -> ExportTraceServiceRequest:
        """The protobuf message (for a JSON body, parsed from the line through json_format: slow)."""
        if self._message is None:
            self._message = from_otlp_json(self.otlp_json())
        return self._message


def ingest(
    body: bytes | bytearray,
    media: str,
    work: fastpath.Work = _NO_WORK_LIMITS,
    reserve: Callable[[str], None] | None = None,
) -> Batch:
    """Decode an (already decompressed) OTLP trace body and build its line, within ``work``'s limits.

    OTLP/JSON takes the strict fast path (:func:`tracekit.receiver.fastpath.parse_json`) and falls
    back to :func:`decode` (``json_format``, which also words the error for a malformed body) for
    anything the fast path cannot vouch for. ``reserve(path)`` is called before each decoding path is
    taken (``"protobuf"``, ``"json"``, ``"json-generic"``): the receiver charges its memory budget
    there. Every refusal is a :class:`PayloadError`: invalid input, a work limit passed, or nesting
    deeper than the parsers' recursion allows.
    """
    try:
        if media == JSON:
            if reserve is not None:
                reserve("json")
            try:
                batch = Batch(json=fastpath.parse_json(body, work), work=work)
            except fastpath.NotCanonical:
                if reserve is not None:
                    reserve("json-generic")
                batch = Batch(message=decode(body, media), work=work)
        else:
            if reserve is not None:
                reserve("protobuf")
            batch = Batch(message=decode(body, media), work=work)
        batch.otlp_json()
    except fastpath.TooMuchWork as exc:
        raise PayloadError(str(exc)) from None
    except RecursionError:
        raise PayloadError("body is nested too deeply to read") from None
    return batch


def success_body(media: str) -> bytes:
    response = ExportTraceServiceResponse()
    if media == JSON:
        return _encoder.encode(json_format.MessageToDict(response))
    return response.SerializeToString()


#: HTTP status -> google.rpc.Code carried in the error body.
_RPC_CODES = {400: 3, 404: 5, 405: 12, 408: 4, 411: 3, 413: 8, 415: 3, 431: 3, 500: 13, 503: 14}


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

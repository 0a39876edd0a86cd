"""Jaeger JSON export: the document the Jaeger UI's "JSON File" upload (Search page) accepts.

``render_jaeger(traces)`` turns model ``Trace`` objects, read from any input format, into the
``{"data": [trace, ...]}`` shape of the Jaeger query API (v1 ``/api/traces``), which is also what
the UI downloads and uploads. The mapping follows what Jaeger and the OpenTelemetry Collector's
Jaeger translator do, so a trace looks the same in Jaeger whichever way it arrived:

- the resource becomes the *process*: ``serviceName`` from ``service.name``, every other resource
  attribute (``k8s.pod.name``, ``k8s.namespace.name``, ...) a process tag; equal resources share a
  process id (``p1``, ``p2``, ...);
- span attributes become span tags, typed ``string``/``bool``/``int64``/``float64`` (lists and
  other values as JSON strings, as the translator does);
- the kind becomes ``span.kind`` (``server``, ``client``, ...; absent when unspecified), the status
  ``otel.status_code`` (``OK``/``ERROR``) plus ``error=true`` on errors and
  ``otel.status_description`` for the message;
- the parent becomes a ``CHILD_OF`` (or ``FOLLOWS_FROM``) reference, links more ``FOLLOWS_FROM``
  references; events become logs (``event`` field plus the event's attributes);
- times are integer microseconds (start and end are floored separately, so children stay inside
  their parents).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from tracekit.analyze.model import RefType, Span, SpanKind, StatusCode, Trace
from tracekit.attributes import SERVICE_NAME

_KIND_TAG = {
    SpanKind.SERVER: "server",
    SpanKind.CLIENT: "client",
    SpanKind.PRODUCER: "producer",
    SpanKind.CONSUMER: "consumer",
    SpanKind.INTERNAL: "internal",
}
#: Tags this module writes itself; a span attribute of the same name would contradict them.
_RESERVED = frozenset({"span.kind", "otel.status_code", "otel.status_description", "error"})


def render_jaeger(traces: Iterable[Trace]) -> str:
    """Return the Jaeger UI upload document for ``traces`` (one JSON text, UTF-8 safe)."""
    return msgspec.json.encode({"data": [jaeger_trace(t) for t in traces if t.spans]}).decode("utf-8")


def jaeger_trace(trace: Trace) -> dict[str, Any]:
    """One trace in Jaeger's JSON model (``traceID``, ``spans``, ``processes``, ``warnings``)."""
    processes: dict[str, dict[str, Any]] = {}
    process_ids: dict[bytes, str] = {}
    spans = []
    for span in trace.spans:
        key = msgspec.json.encode(
            [*sorted((str(k), _plain(v)) for k, v in span.resource.items()), span.service]
        )
        pid = process_ids.get(key)
        if pid is None:
            pid = process_ids[key] = f"p{len(process_ids) + 1}"
            processes[pid] = {
                "serviceName": span.service or str(span.resource.get(SERVICE_NAME) or "unknown"),
                "tags": [_tag(k, v) for k, v in span.resource.items() if k != SERVICE_NAME],
            }
        spans.append(jaeger_span(span, pid))
    return {
        "traceID": trace.trace_id,
        "spans": spans,
        "processes": processes,
        "warnings": list(trace.warnings) or None,
    }


def jaeger_span(span: Span, process_id: str) -> dict[str, Any]:
    """One span in Jaeger's JSON model."""
    references = []
    if span.parent_id:
        ref_type = "FOLLOWS_FROM" if span.ref_type is RefType.FOLLOWS_FROM else "CHILD_OF"
        references.append({"refType": ref_type, "traceID": span.trace_id, "spanID": span.parent_id})
    for link in span.links:
        references.append({"refType": "FOLLOWS_FROM", "traceID": link.trace_id, "spanID": link.span_id})
    tags = [_tag(k, v) for k, v in span.attributes.items() if k not in _RESERVED]
    kind = _KIND_TAG.get(span.kind)
    if kind:
        tags.append(_tag("span.kind", kind))
    if span.status is StatusCode.ERROR:
        tags.append(_tag("otel.status_code", "ERROR"))
        tags.append(_tag("error", True))
    elif span.status is StatusCode.OK:
        tags.append(_tag("otel.status_code", "OK"))
    if span.status_message:
        tags.append(_tag("otel.status_description", span.status_message))
    start_us = span.start_ns // 1000
    end_us = max(span.end_ns, span.start_ns) // 1000
    return {
        "traceID": span.trace_id,
        "spanID": span.span_id,
        "operationName": span.name,
        "references": references,
        "startTime": start_us,
        "duration": end_us - start_us,
        "tags": tags,
        "logs": [
            {
                "timestamp": event.time_ns // 1000,
                "fields": [_tag("event", event.name)]
                + [_tag(k, v) for k, v in event.attributes.items() if k != "event"],
            }
            for event in span.events
        ],
        "processID": process_id,
        "warnings": None,
        "flags": 1,
    }


def _tag(key: str, value: Any) -> dict[str, Any]:
    """A Jaeger key/value with its type, as the Collector's translator types OTLP values."""
    if isinstance(value, bool):
        return {"key": key, "type": "bool", "value": value}
    if isinstance(value, int):
        return {"key": key, "type": "int64", "value": value}
    if isinstance(value, float):
        return {"key": key, "type": "float64", "value": value}
    if isinstance(value, str):
        return {"key": key, "type": "string", "value": value}
    if isinstance(value, bytes):
        return {"key": key, "type": "binary", "value": base64.b64encode(value).decode("ascii")}
    return {"key": key, "type": "string", "value": msgspec.json.encode(_plain(value)).decode("utf-8")}


def _plain(value: Any) -> Any:
    """A JSON-encodable copy of an attribute value (lists and maps keep their shape)."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return str(value)

"""Zipkin v2 JSON: an array of spans (``POST /api/v2/spans``, ``GET /api/v2/trace/{id}``) or an
array of traces (``GET /api/v2/traces``).

Two Zipkin habits need care before the spans fit the model:

- **shared spans**: with B3 propagation the server reports its half under the *client's* span id
  (``"shared": true``; old tracers omit the flag). When both halves are in the document, the
  server half gets a derived, stable span id and the client's id as parent, so the tree has a
  CLIENT parent and a SERVER child as in OTLP; children that named the shared id as parent are
  attached to the server half (Zipkin's own tree builder does the same). A shared span whose
  client half is absent keeps its id.
- **span halves without a timestamp**: a tracer that flushes late reports tags (or the other
  half) without ``timestamp``. Such a span is merged into the span with the same id from the same
  service (its tags and annotations are added); without such a partner there is no time to place
  it, and it is dropped with a warning.

A document is read element by element (``documents.py``), so both merges need a trace's parts
together although they may lie anywhere in the array: a trace's parts are held until no part of it
came during the last ``window_spans`` spans read (the line inputs' completeness rule,
``assemble.py``), or the document ends. Traces are converted in the order they began (as when the
document is decoded whole, so the report is the same); more than ``max_open_spans`` held converts
the oldest early. A part arriving after its trace was converted is converted on its own, with a
warning on the trace. Memory follows the traces open in the window, not the document.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import msgspec

from tracekit.analyze.model import Event, Span, SpanKind, StatusCode
from tracekit.analyze.readers.assemble import (
    DEFAULT_MAX_OPEN_SPANS,
    DEFAULT_WINDOW_SPANS,
    REMEMBER_FLUSHED,
    SpanSink,
)
from tracekit.analyze.readers.common import (
    BadId,
    Micros,
    WarningReporter,
    derived_span_id,
    field_error,
    is_all_zero,
    normalize_id,
    us_to_ns,
)


class _Endpoint(msgspec.Struct, gc=False):
    serviceName: str | None = None
    ipv4: str | None = None
    ipv6: str | None = None
    port: int | None = None


class _Annotation(msgspec.Struct, gc=False):
    timestamp: Micros = None
    value: str | None = None


class _ZSpan(msgspec.Struct, gc=False):
    traceId: Any = None
    id: Any = None
    parentId: Any = None
    kind: str | None = None
    name: str | None = None
    timestamp: Micros = None
    duration: Micros = None
    localEndpoint: _Endpoint | None = None
    remoteEndpoint: _Endpoint | None = None
    tags: dict[str, Any] | None = None
    annotations: list[_Annotation] | None = None
    shared: bool | None = None
    debug: bool | None = None


_DECODER = msgspec.json.Decoder(list[_ZSpan | list[_ZSpan]])
_ELEMENT_DECODER = msgspec.json.Decoder(_ZSpan | list[_ZSpan])

_KINDS = {
    "SERVER": SpanKind.SERVER,
    "CLIENT": SpanKind.CLIENT,
    "PRODUCER": SpanKind.PRODUCER,
    "CONSUMER": SpanKind.CONSUMER,
}


class _Half:
    """A Zipkin span being normalised (mutable until it becomes a model Span)."""

    __slots__ = ("input_sid", "parent", "raw", "sid", "tid")

    def __init__(self, raw: _ZSpan, tid: str, sid: str, parent: str | None) -> None:
        self.raw = raw
        self.tid = tid
        self.sid = sid
        #: How messages name the span: its id in the input (``sid`` may be derived from it).
        self.input_sid = sid
        self.parent = parent


def _service(z: _ZSpan) -> str:
    ep = z.localEndpoint
    return ep.serviceName if ep is not None and ep.serviceName else "unknown"


class ZipkinConverter:
    """Turns one decoded Zipkin document into model spans (see the module docstring)."""

    #: A top-level array is read element by element (``documents.py``); objects have no key to stream.
    STREAM_KEY = None
    #: Never set: a Zipkin document is not shared between workers (``readers.SLICEABLE``).
    skip = False

    def __init__(
        self,
        asm: SpanSink,
        report: WarningReporter,
        window_spans: int = DEFAULT_WINDOW_SPANS,
        max_open_spans: int = DEFAULT_MAX_OPEN_SPANS,
    ) -> None:
        self.asm = asm
        self.report = report
        self.spans_ok = 0
        #: The first element none of whose spans validates: an error only if no element has one.
        self.deferred: tuple[str, msgspec.ValidationError] | None = None
        #: The document's spans by trace, least recently touched first, until the trace is idle
        #: (:meth:`feed_element`) or the document ends: the halves of a shared span and the parts
        #: without a timestamp may be anywhere in it.
        self._by_trace: dict[str, list[_Half]] = {}
        self._touched: dict[str, int] = {}
        self._read = self._held = 0
        self.window = window_spans
        self.max_open = max_open_spans
        #: Traces converted before their document ended (a part arriving later is not merged).
        self._converted: OrderedDict[str, None] = OrderedDict()

    def feed(self, data: bytes, line: int | None) -> int:
        try:
            items = _DECODER.decode(data)
        except msgspec.ValidationError as exc:
            # One span with a bad field (a timestamp as a string) must not cost the document or
            # the line: the spans that validate are read, the others dropped with a warning.
            raw = msgspec.json.decode(data)
            if not isinstance(raw, list):
                raise
            items = []
            for index, item in enumerate(raw):
                kept = self._lenient(item, index, exc, line)
                if kept is None:
                    raise
                items.append(kept)
            if not any(items):
                raise
        for item in items:
            self._collect(item, line)
        return self.end_document()

    def _lenient(
        self, raw: Any, index: int, error: msgspec.ValidationError, line: int | None
    ) -> list[_ZSpan] | None:
        """The spans of element ``index`` (a span, or a trace: a list of spans) that validate, each
        other one dropped with a warning naming it; None when the element is neither."""
        if isinstance(raw, dict):
            parts = [(raw, f"span {index + 1}")]
        elif isinstance(raw, list):
            parts = [(span, f"trace {index + 1}, span {n + 1}") for n, span in enumerate(raw)]
        else:
            return None
        spans = []
        for part, where in parts:
            try:
                spans.append(msgspec.convert(part, _ZSpan))
            except msgspec.ValidationError as exc:
                self.report.warn(f"Zipkin v2 JSON: {where} dropped: {field_error(exc)}", line=line)
        return spans

    def feed_element(self, data: bytes, index: int, path: str, line: int | None) -> int:
        """One element of the document's array (a span, or a trace: an array of spans); its spans
        are converted when the document ends (:meth:`end_document`). A span that does not validate
        is dropped with a warning (as in :meth:`feed`); an element none of whose spans validates is
        the document's error only when no element has one (``deferred``)."""
        try:
            item: _ZSpan | list[_ZSpan] = _ELEMENT_DECODER.decode(data)
        except msgspec.ValidationError as exc:
            valid = self._lenient(msgspec.json.decode(data), index, exc, line)
            if valid is None:
                raise
            if not valid:
                if self.deferred is None:
                    self.deferred = (path, exc)
                return 0
            item = valid
        self._collect(item, line)
        kept = 0
        by_trace, touched, idle = self._by_trace, self._touched, self._read - self.window
        # Oldest first, so traces reach the sink in the order they began, as when the document is
        # decoded whole; a trace still open holds back the ones behind it, up to the cap.
        while by_trace:
            tid = next(iter(by_trace))
            if touched[tid] > idle and self._held <= self.max_open:
                break
            halves = by_trace.pop(tid)
            self._held -= len(halves)
            kept += self._convert(tid, halves)
            del touched[tid]
            self._converted[tid] = None
            if len(self._converted) > REMEMBER_FLUSHED:
                self._converted.popitem(last=False)
        return kept

    def _collect(self, item: _ZSpan | list[_ZSpan], line: int | None) -> None:
        for z in item if isinstance(item, list) else (item,):
            try:
                tid = normalize_id(z.traceId, 16, base64_ok=False)
            except BadId as e:
                self.report.warn(f"span {z.name!r:.60} dropped: field traceId: {e}", line=line)
                continue
            try:
                sid = normalize_id(z.id, 8, base64_ok=False)
            except BadId as e:
                self.asm.warn(tid, f"span {z.name!r:.60} dropped: field id: {e}")
                continue
            parent = None
            if z.parentId not in (None, ""):
                try:
                    parent = normalize_id(z.parentId, 8, base64_ok=False)
                except BadId as e:
                    self.asm.warn(tid, f"span {sid}: field parentId ignored ({e}); span kept as a root")
                if parent is not None and is_all_zero(parent):
                    parent = None
            self._read += 1
            halves = self._by_trace.get(tid)
            if halves is None:
                halves = self._by_trace[tid] = []
                if tid in self._converted:
                    self.asm.warn(
                        tid,
                        f"spans arrived more than {self.window} spans after the rest of the trace; "
                        "converted on their own (a shared span's halves among them are not merged)",
                    )
            self._touched[tid] = self._read
            self._held += 1
            halves.append(_Half(z, tid, sid, parent))

    def end_document(self) -> int:
        """Convert the document's spans, trace by trace; returns how many were kept."""
        by_trace, self._by_trace = self._by_trace, {}
        self._touched.clear()
        self._held = 0
        self._converted.clear()
        return sum(self._convert(tid, halves) for tid, halves in by_trace.items())

    def _convert(self, tid: str, halves: list[_Half]) -> int:
        kept = 0
        for span in self._normalise(tid, halves):
            self.asm.add(span)
            kept += 1
        self.spans_ok += kept
        return kept

    def _normalise(self, tid: str, halves: list[_Half]) -> list[Span]:
        # 1. merge halves without a timestamp into a timed span with the same id and service
        timed: dict[tuple[str, str], _Half] = {}
        for h in halves:
            if h.raw.timestamp is not None:
                timed.setdefault((h.sid, _service(h.raw)), h)
        extra_tags: dict[int, list[_ZSpan]] = {}
        kept: list[_Half] = []
        merged = dropped = 0
        for h in halves:
            if h.raw.timestamp is not None:
                kept.append(h)
                continue
            partner = timed.get((h.sid, _service(h.raw)))
            if partner is None:
                dropped += 1
                continue
            extra_tags.setdefault(id(partner), []).append(h.raw)
            merged += 1
        if merged:
            self.asm.warn(
                tid, f"{merged} span part(s) without a timestamp merged into the span with the same id"
            )
        if dropped:
            self.asm.warn(
                tid, f"{dropped} span(s) without a timestamp dropped (no part with a time to merge into)"
            )

        # 2. shared server halves: derive an id, parent them under the client half
        clients = {h.sid for h in kept if h.raw.kind == "CLIENT"}
        server_of: dict[str, str] = {}
        for h in kept:
            z = h.raw
            # A SERVER span reusing a CLIENT's id is its shared half, even where an old tracer
            # forgot the "shared" flag: two spans cannot own one id.
            if z.kind == "SERVER" and h.sid in clients:
                new = derived_span_id(h.sid, "server")
                server_of[h.sid] = new
                h.input_sid = f"{h.sid} (server side)"
                self.asm.alias(tid, new, h.input_sid)
                h.parent = h.sid
                h.sid = new
        if server_of:
            derived = set(server_of.values())
            for h in kept:
                # a child of the shared id ran in the server: attach it there (Zipkin does the same)
                if h.parent in server_of and h.sid not in derived:
                    h.parent = server_of[h.parent]

        spans = []
        for h in kept:
            spans.append(self._span(h, extra_tags.get(id(h), ())))
        return spans

    def _span(self, h: _Half, extras: Any) -> Span:
        z = h.raw
        tags: dict[str, Any] = dict(z.tags) if z.tags else {}
        annotations = list(z.annotations or ())
        for x in extras:
            if x.tags:
                for k, v in x.tags.items():
                    tags.setdefault(k, v)
            annotations.extend(x.annotations or ())
        service = _service(z)
        resource: dict[str, Any] = {"service.name": service} if service != "unknown" else {}
        if z.localEndpoint is not None and (z.localEndpoint.ipv4 or z.localEndpoint.ipv6):
            resource["host.ip"] = z.localEndpoint.ipv4 or z.localEndpoint.ipv6
        remote = z.remoteEndpoint
        if remote is not None:
            if remote.serviceName:
                tags.setdefault("peer.service", remote.serviceName)
            if remote.ipv4 or remote.ipv6:
                tags.setdefault("network.peer.address", remote.ipv4 or remote.ipv6)
            if remote.port:
                tags.setdefault("network.peer.port", remote.port)
        start = us_to_ns(z.timestamp)
        if start == 0:
            self.asm.zero_start(h.tid)  # a relative trace, or "not set": the assembler decides
        duration = us_to_ns(z.duration)
        if duration < 0:
            self.asm.warn(h.tid, f"span {h.input_sid}: negative duration; clamped to zero")
            duration = 0
        if "error" in tags:
            status, message = StatusCode.ERROR, str(tags["error"] or "")
        else:
            status, message = StatusCode.UNSET, ""
        kind = _KINDS.get((z.kind or "").upper(), SpanKind.INTERNAL)
        events = tuple(
            Event(name=a.value or "", time_ns=us_to_ns(a.timestamp))
            for a in annotations
            if a.timestamp is not None
        )
        return Span(
            trace_id=h.tid,
            span_id=h.sid,
            parent_id=h.parent,
            name=z.name or "",
            kind=kind,
            start_ns=start,
            end_ns=start + duration,
            service=service,
            status=status,
            status_message=message,
            attributes=tags,
            resource=resource,
            events=events,
        )

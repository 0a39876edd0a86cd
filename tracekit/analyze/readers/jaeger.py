"""Jaeger JSON: the query API's ``{"data": [...]}``, the UI's download, and bare trace objects.

Jaeger's model differs from OTLP in three ways that matter here: times are microseconds, the
parent is a *reference* (``CHILD_OF`` or ``FOLLOWS_FROM``, possibly several), and kind/status are
tags (``span.kind``, ``error``, ``otel.status_code``). Service and resource attributes live in
``processes`` keyed by ``processID`` (or, in old exports, in an embedded ``process``).
"""

from __future__ import annotations

from typing import Any

import msgspec

from tracekit.analyze.model import Event, Link, RefType, Span, SpanKind, StatusCode
from tracekit.analyze.readers.assemble import SpanSink
from tracekit.analyze.readers.common import (
    BadId,
    Micros,
    WarningReporter,
    canonical_ids,
    field_error,
    is_all_zero,
    looks_hex,
    normalize_id,
    us_to_ns,
)


class _Tag(msgspec.Struct, gc=False):
    key: str = ""
    type: str | None = None
    value: Any = None


class _Ref(msgspec.Struct, gc=False):
    refType: str | None = None
    traceID: Any = None
    spanID: Any = None


class _Log(msgspec.Struct, gc=False):
    timestamp: Micros = None
    fields: list[_Tag] | None = None


class _Process(msgspec.Struct, gc=False):
    serviceName: str | None = None
    tags: list[_Tag] | None = None


class _Span(msgspec.Struct, gc=False):
    traceID: Any = None
    spanID: Any = None
    parentSpanID: Any = None
    operationName: str | None = None
    references: list[_Ref] | None = None
    startTime: Micros = None
    duration: Micros = None
    tags: list[_Tag] | None = None
    logs: list[_Log] | None = None
    processID: str | None = None
    process: _Process | None = None
    warnings: list[str] | None = None


class _Trace(msgspec.Struct, gc=False):
    traceID: Any = None
    spans: list[_Span] | None = None
    processes: dict[str, _Process] | None = None
    warnings: list[str] | None = None


class _Envelope(msgspec.Struct, gc=False):
    data: list[_Trace] | None = None
    # A bare trace object has these at the top level instead.
    traceID: Any = None
    spans: list[_Span] | None = None
    processes: dict[str, _Process] | None = None
    warnings: list[str] | None = None
    errors: Any = None


class _Outline(msgspec.Struct, gc=False):
    """A trace object checked as :class:`_Trace` is, except inside its spans."""

    traceID: Any = None
    spans: list[msgspec.Raw] | None = None
    processes: dict[str, _Process] | None = None
    warnings: list[str] | None = None


_DECODER = msgspec.json.Decoder(_Envelope | list[_Trace])
_TRACE_DECODER = msgspec.json.Decoder(_Trace)
_OUTLINE_DECODER = msgspec.json.Decoder(_Outline)

_KINDS = {
    "server": SpanKind.SERVER,
    "client": SpanKind.CLIENT,
    "producer": SpanKind.PRODUCER,
    "consumer": SpanKind.CONSUMER,
    "internal": SpanKind.INTERNAL,
}


def tag_value(tag: _Tag) -> Any:
    """A tag's value converted by its declared type (Jaeger writes bools and numbers as strings too)."""
    v = tag.value
    t = (tag.type or "").lower()
    if t == "bool":
        return v is True or (isinstance(v, str) and v.lower() == "true")
    if t == "int64" and not isinstance(v, bool):
        try:
            return int(v)
        except (TypeError, ValueError):
            return v
    if t == "float64" and not isinstance(v, bool):
        try:
            return float(v)
        except (TypeError, ValueError):
            return v
    return v


def tags_dict(tags: list[_Tag] | None) -> dict[str, Any]:
    return {t.key: tag_value(t) for t in tags} if tags else {}


def _kind(attrs: dict[str, Any]) -> SpanKind:
    return _KINDS.get(str(attrs.get("span.kind", "")).lower(), SpanKind.UNSPECIFIED)


def _events(logs: list[_Log]) -> tuple[Event, ...]:
    return tuple(
        Event(name=str(f.get("event", f.get("message", "log"))), time_ns=us_to_ns(lg.timestamp), attributes=f)
        for lg in logs
        for f in (tags_dict(lg.fields),)
    )


#: Distinct processes and tag lists a converter shares before it starts again (bounds its memory).
MAX_SHARED = 16_384
#: What a span without a process, or without tags, gets (shared: the model's dicts are read-only).
_NO_PROCESS: tuple[str, dict[str, Any]] = ("unknown", {})
_NO_TAGS: tuple[dict[str, Any], SpanKind, StatusCode, str] = ({}, SpanKind.UNSPECIFIED, StatusCode.UNSET, "")
#: Never a trace id as decoded.
_NO_ID = object()


class JaegerConverter:
    """Turns decoded Jaeger documents into model spans (see the module docstring for the mapping)."""

    #: The array of a top-level object read element by element (``documents.py``).
    STREAM_KEY = b"data"
    #: Decode and check, but convert nothing: another worker converts this element
    #: (``readers.read_document``). Set by the caller around each element.
    skip = False

    def __init__(self, asm: SpanSink, report: WarningReporter) -> None:
        self.asm = asm
        self.report = report
        self.spans_ok = 0
        #: Resources by the content of their process (see :meth:`_process`), and span tag lists by
        #: content -> (attributes, kind, status, message) (see :meth:`_span_tags`).
        self._resources: dict[Any, tuple[str, dict[str, Any]]] = {}
        self._shared_tags: dict[Any, tuple[dict[str, Any], SpanKind, StatusCode, str]] = {}
        #: Trace ids as written -> normalised, for ids that need no warning.
        self._trace_ids: dict[str, str] = {}
        #: Read element by element, a trace none of whose spans validates is only an error when no
        #: trace of the document validates (as when the document is decoded whole): kept until then.
        self.deferred: tuple[str, msgspec.ValidationError] | None = None

    def feed_element(self, data: bytes, index: int, path: str, line: int | None) -> int:
        """One trace of the ``data`` array (or of a bare list), read on its own.

        :raises msgspec.ValidationError: a fault outside the trace's spans (``path`` names it).
        """
        if self.skip:
            # Only whether the reading stops here matters: a fault inside the spans never stops it
            # (they are dropped one by one), so a trace that passes the outline is done with.
            try:
                _OUTLINE_DECODER.decode(data)
                return 0
            except msgspec.ValidationError:
                pass  # the checks below say whether it stops the reading
        try:
            tr = _TRACE_DECODER.decode(data)
        except msgspec.ValidationError as exc:
            raw = msgspec.json.decode(data)
            found = self._lenient_trace(raw, index, exc, line)
            if found is None:
                raise
            tr, good = found
            if not good:
                if self.deferred is None:
                    self.deferred = (path, exc)
                return 0
        if self.skip:
            return 0
        kept = self._trace(tr, line)
        self.spans_ok += kept
        return kept

    def end_document(self) -> None:
        """Nothing is held between traces."""

    def feed(self, data: bytes, line: int | None) -> int:
        try:
            doc = _DECODER.decode(data)
        except msgspec.ValidationError as exc:
            # One span with a bad field (a duration as a string) must not cost the whole document:
            # a Jaeger file is one document, not one line per batch as OTLP's are.
            doc = self._lenient(data, exc, line)
        if isinstance(doc, list):
            traces = doc
        elif doc.data is not None:
            traces = doc.data
        elif doc.spans is not None:
            traces = [
                _Trace(traceID=doc.traceID, spans=doc.spans, processes=doc.processes, warnings=doc.warnings)
            ]
        else:
            raise ValueError("no field data or spans (not a Jaeger trace document)")
        if isinstance(doc, _Envelope) and doc.errors:
            self.report.warn(f"the document reports errors: {str(doc.errors)[:200]}", line=line)
        if self.skip:
            return 0
        kept = 0
        for tr in traces:
            kept += self._trace(tr, line)
        self.spans_ok += kept
        return kept

    def _lenient(self, data: bytes, error: msgspec.ValidationError, line: int | None) -> _Envelope:
        """Decode span by span, dropping (with a warning) the spans that do not validate.

        :raises msgspec.ValidationError: ``error`` again when the fault is outside the spans (the
            document's shape, a process), or when no span at all validates.
        """
        raw = msgspec.json.decode(data)
        if isinstance(raw, dict) and isinstance(raw.get("data"), list):
            raw_traces, holder = raw["data"], raw
        elif isinstance(raw, dict) and isinstance(raw.get("spans"), list):
            raw_traces, holder = [raw], None
        elif isinstance(raw, list):
            raw_traces, holder = raw, None
        else:
            raise error
        traces: list[_Trace] = []
        good = 0
        for t_index, raw_trace in enumerate(raw_traces):
            found = self._lenient_trace(raw_trace, t_index, error, line)
            if found is None:
                raise error
            traces.append(found[0])
            good += found[1]
        if not good:
            raise error
        errors = holder.get("errors") if holder is not None else None
        return _Envelope(data=traces, errors=errors)

    def _lenient_trace(
        self, raw_trace: Any, t_index: int, error: msgspec.ValidationError, line: int | None
    ) -> tuple[_Trace, int] | None:
        """One trace's valid spans and how many there are (the others dropped with a warning);
        None when the fault is outside the spans."""
        if not isinstance(raw_trace, dict) or not isinstance(raw_trace.get("spans", []), list):
            return None
        spans: list[_Span] = []
        for s_index, raw_span in enumerate(raw_trace.get("spans") or ()):
            try:
                spans.append(msgspec.convert(raw_span, _Span))
            except msgspec.ValidationError as exc:
                where = f"trace {t_index + 1}, span {s_index + 1}"
                self.report.warn(f"Jaeger JSON: {where} dropped: {field_error(exc)}", line=line)
        try:
            trace = msgspec.convert({**raw_trace, "spans": []}, _Trace)
        except msgspec.ValidationError:
            return None
        trace.spans = spans
        return trace, len(spans)

    def _process(self, proc: _Process | None) -> tuple[str, dict[str, Any]]:
        """A process's service and resource, shared by every process with the same content.

        A query answer repeats the same processes in every trace: sharing their resource lets the
        rules' per-resource caches and the partition tables (``partitions.py``) work across
        traces, as they do for OTLP. Tag values are told apart by class too (1, 1.0 and true are
        equal keys in Python, not the same tag); a value that cannot be a key (a list) is not shared.
        """
        if proc is None:
            return _NO_PROCESS
        try:
            key: Any = (
                proc.serviceName,
                *[(t.key, t.type, t.value, t.value.__class__) for t in proc.tags or ()],
            )
            cached = self._resources.get(key)
        except TypeError:
            key, cached = None, None
        if cached is None:
            res = tags_dict(proc.tags)
            service = proc.serviceName or "unknown"
            res["service.name"] = service
            cached = (service, res)
            if key is not None:
                if len(self._resources) >= MAX_SHARED:
                    self._resources.clear()
                self._resources[key] = cached
        return cached

    def _span_tags(self, tags: list[_Tag] | None) -> tuple[dict[str, Any], SpanKind, StatusCode, str]:
        """A span's attributes with the kind and status they say, shared between spans whose tags
        are the same (as :meth:`_process`); the model's dicts are read-only."""
        if not tags:
            return _NO_TAGS
        try:
            key: Any = tuple([(t.key, t.type, t.value, t.value.__class__) for t in tags])
            cached = self._shared_tags.get(key)
        except TypeError:
            key, cached = None, None
        if cached is None:
            attrs = tags_dict(tags)
            cached = (attrs, _kind(attrs), *_status(attrs))
            if key is not None:
                if len(self._shared_tags) >= MAX_SHARED:
                    self._shared_tags.clear()
                self._shared_tags[key] = cached
        return cached

    def _trace(self, tr: _Trace, line: int | None) -> int:
        """Convert one trace object's spans into the sink, grouped by trace id."""
        groups: dict[str, list[Span]] = {}
        roots: set[str] = set()
        if not self._fast_trace(tr, groups, roots):
            groups.clear()
            roots.clear()
            self._checked_trace(tr, groups, roots, line)
        if groups:
            self.asm.add_groups(groups, roots)
        return sum(map(len, groups.values()))

    def _fast_trace(self, tr: _Trace, groups: dict[str, list[Span]], roots: set[str]) -> bool:
        """:meth:`_checked_trace` for the common trace, without its per-id checks; ``False`` (and
        nothing added) as soon as a span would need a warning, a repair or a second look.

        Common means what Jaeger and the OpenTelemetry exporters write: 16-character lowercase hex
        span ids (checked for the whole trace at once, ``canonical_ids``), a hex trace id, at most
        one reference, to a span of the same trace, a process that is there, a start after 0 and
        no negative duration. Only caches are touched until it returns ``True``.
        """
        spans = tr.spans
        if not spans:
            return True
        if not canonical_ids([sp.spanID for sp in spans]):
            return False
        processes = tr.processes or {}
        tids = self._trace_ids
        resources: dict[Any, tuple[str, dict[str, Any]]] = {}
        raw_tid: Any = _NO_ID
        tid = ""
        group: list[Span] = []
        parents: list[Any] = []
        for sp in spans:
            raw = sp.traceID if sp.traceID is not None else tr.traceID
            if raw != raw_tid or raw.__class__ is not str:
                if raw.__class__ is not str:
                    return False
                known = tids.get(raw)
                if known is None:
                    if not looks_hex(raw):
                        return False
                    try:
                        known = normalize_id(raw, 16, base64_ok=False)
                    except BadId:
                        return False
                    if len(tids) >= MAX_SHARED:
                        tids.clear()
                    tids[raw] = known
                raw_tid, tid = raw, known
                group = groups.get(tid) or groups.setdefault(tid, [])
            refs = sp.references
            ref_type = RefType.CHILD_OF
            if refs:
                if len(refs) != 1:
                    return False
                r = refs[0]
                if r.traceID is not None and r.traceID != raw_tid:
                    return False
                parent = r.spanID
                if r.refType is not None and r.refType.upper() == "FOLLOWS_FROM":
                    ref_type = RefType.FOLLOWS_FROM
            else:
                parent = sp.parentSpanID
                if parent in (None, "", 0):
                    parent = None
            if parent is not None:
                parents.append(parent)
            proc = sp.process
            if proc is None:
                proc = processes.get(sp.processID or "")
                if proc is None and sp.processID:
                    return False
            pkey = id(proc)
            resource = resources.get(pkey)
            if resource is None:
                resource = resources[pkey] = self._process(proc)
            start = sp.startTime
            if start is None or start <= 0:
                return False
            start = us_to_ns(start)
            duration = us_to_ns(sp.duration)
            if duration < 0:
                return False
            attrs, kind, status, message = self._span_tags(sp.tags)
            group.append(
                Span(
                    tid,
                    sp.spanID,
                    parent,
                    sp.operationName or "",
                    kind,
                    start,
                    start + duration,
                    resource[0],
                    status,
                    message,
                    attrs,
                    resource[1],
                    _events(sp.logs) if sp.logs else (),
                    (),
                    ref_type,
                )
            )
            if parent is None:
                roots.add(tid)
        # Parent ids are checked at the end, all at once: nothing was added yet.
        return canonical_ids(parents, zero_ok=False)

    def _checked_trace(
        self, tr: _Trace, groups: dict[str, list[Span]], roots: set[str], line: int | None
    ) -> None:
        """Every span checked one by one: warnings for what is wrong, repairs where possible."""
        processes = tr.processes or {}
        for sp in tr.spans or ():
            raw_tid = sp.traceID if sp.traceID is not None else tr.traceID
            try:
                tid = normalize_id(raw_tid, 16, base64_ok=False, free_text_ok=True)
            except BadId as e:
                self.report.warn(f"span {sp.operationName!r:.60} dropped: field traceID: {e}", line=line)
                continue
            try:
                sid = normalize_id(sp.spanID, 8, base64_ok=False, free_text_ok=True)
            except BadId as e:
                self.asm.warn(tid, f"span {sp.operationName!r:.60} dropped: field spanID: {e}")
                continue
            if not (looks_hex(raw_tid) and looks_hex(sp.spanID)):
                self.asm.warn(tid, "ids that are not hex were replaced by stable hashed hex ids")
                if not looks_hex(sp.spanID):
                    self.asm.alias(tid, sid, repr(sp.spanID)[:60])  # messages name the input's id
            parent, ref_type, links = self._parent(sp, tid)
            proc = sp.process if sp.process is not None else processes.get(sp.processID or "")
            if proc is None and sp.processID:
                self.asm.warn(tid, f"span {sid}: processID {sp.processID!r:.40} not in processes")
            service, resource = self._process(proc)
            attrs, kind, status, message = self._span_tags(sp.tags)
            if sp.startTime is None or sp.startTime < 0:
                # It cannot be placed on the timeline: as in OTLP.
                self.asm.warn(tid, f"span {sid} dropped: field startTime: {sp.startTime!r}, expected a time")
                continue
            if sp.startTime == 0:
                self.asm.zero_start(tid)  # a relative trace, or "not set": the assembler decides
            start = us_to_ns(sp.startTime)
            duration = us_to_ns(sp.duration)
            if duration < 0:
                self.asm.warn(tid, f"span {sid}: negative duration {duration / 1e6:.3f} ms; clamped to zero")
                duration = 0
            span = Span(
                trace_id=tid,
                span_id=sid,
                parent_id=parent,
                name=sp.operationName or "",
                kind=kind,
                start_ns=start,
                end_ns=start + duration,
                service=service,
                status=status,
                status_message=message,
                attributes=attrs,
                resource=resource,
                events=_events(sp.logs) if sp.logs else (),
                links=links,
                ref_type=ref_type,
            )
            groups.setdefault(tid, []).append(span)
            if parent is None:
                roots.add(tid)

    def _parent(self, sp: _Span, tid: str) -> tuple[str | None, RefType, tuple[Link, ...]]:
        """First CHILD_OF in the same trace is the parent; else the first FOLLOWS_FROM; others are links."""
        refs: list[tuple[str, str, str]] = []  # (ref type, trace id, span id)
        for r in sp.references or ():
            try:
                rtid = normalize_id(r.traceID, 16, base64_ok=False, free_text_ok=True) if r.traceID else tid
                rsid = normalize_id(r.spanID, 8, base64_ok=False, free_text_ok=True)
            except BadId as e:
                self.asm.warn(tid, f"a reference was ignored: {e}")
                continue
            refs.append(((r.refType or "CHILD_OF").upper(), rtid, rsid))
        if not refs and sp.parentSpanID not in (None, "", 0):
            try:
                refs.append(
                    ("CHILD_OF", tid, normalize_id(sp.parentSpanID, 8, base64_ok=False, free_text_ok=True))
                )
            except BadId as e:
                self.asm.warn(tid, f"field parentSpanID ignored: {e}")
        chosen: tuple[str, str, str] | None = None
        for ref in refs:
            if ref[0] == "CHILD_OF" and ref[1] == tid:
                chosen = ref
                break
        if chosen is None:
            for ref in refs:
                if ref[1] == tid:
                    chosen = ref
                    break
        links = tuple(
            Link(trace_id=r[1], span_id=r[2], attributes={"ref_type": r[0]}) for r in refs if r is not chosen
        )
        if chosen is None or is_all_zero(chosen[2]):
            return None, RefType.CHILD_OF, links
        ref_type = RefType.FOLLOWS_FROM if chosen[0] == "FOLLOWS_FROM" else RefType.CHILD_OF
        return chosen[2], ref_type, links


def _status(attrs: dict[str, Any]) -> tuple[StatusCode, str]:
    code = str(attrs.get("otel.status_code", "")).upper()
    message = str(attrs.get("otel.status_description", "") or "")
    err = attrs.get("error")
    if code == "ERROR" or err is True or (isinstance(err, str) and err.lower() == "true"):
        return StatusCode.ERROR, message
    if code == "OK":
        return StatusCode.OK, message
    return StatusCode.UNSET, message

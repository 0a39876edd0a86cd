"""Group spans into traces and decide when a trace is complete (the "open-trace window").

A collector's file exporter writes one batch per line and a trace's spans land on several lines,
interleaved with other traces. Holding everything until the end of the file would make memory grow
with the file; emitting per line would split traces. The rule (also in docs/analyzer-formats.md):

- a trace stays *open* while spans for it keep arriving;
- at the end of a line, an open trace that **has a root span** and received **no span during the last
  ``window_spans`` spans read** is complete and is emitted;
- an idle trace without a root waits (its root usually ends last and is written last) until its
  root arrives, the end of input, or the open-span cap;
- when more than ``max_open_spans`` spans are open, the least recently touched traces are emitted
  early, with a warning (memory stays bounded whatever the input);
- a span for a trace that was already emitted starts a new part of that trace, emitted with the
  same trace id and a warning that it arrived late.

Single-document inputs feed the same assembler and emit everything at the end.

The converters only know the :class:`SpanSink` half of it (spans grouped per trace, per-trace
warnings): the partitioned analysis (``tracekit/analyze/partitions.py``) gives them a sink that
writes the spans to partitions by trace id instead, and assembles each partition whole.

**A start time of 0.** Most formats write 0 for "not set", but test tools, synthetic fixtures and some
converters write traces in relative time, starting at 0. Readers keep a span whose start is 0 and
tell the assembler (:meth:`TraceAssembler.zero_start`); when the trace is emitted, its starts decide:
if every span of the trace starts before :data:`RELATIVE_LIMIT_NS` (the trace is consistently
relative), the 0 is a time like any other; otherwise it means "missing" and those spans are dropped
with a warning. A span with no start at all, or a negative one, is dropped by its reader.

"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Protocol

from tracekit.analyze.model import Span, Trace

#: Default number of spans read after a trace's last span before a rooted trace is emitted. The
#: collector's batch processor sends 8192 spans or every 200 ms, so this covers a dozen full batches.
DEFAULT_WINDOW_SPANS = 100_000

#: Default cap on spans held in open traces (about 300-500 MB of model objects at most).
DEFAULT_MAX_OPEN_SPANS = 400_000

#: How many emitted trace ids are remembered to recognise late spans.
REMEMBER_FLUSHED = 200_000

#: At most this many distinct warnings are kept per trace; the rest are counted.
MAX_TRACE_WARNINGS = 20

#: A trace whose every start is below this (ns after the epoch, about 11.6 days) is in relative time:
#: no real clock reads January 1970, and no relative trace lasts 11 days.
RELATIVE_LIMIT_NS = 10**15


class SpanSink(Protocol):
    """Where a converter puts what it read: spans grouped by trace id, and warnings about a trace."""

    def add_groups(self, groups: dict[str, list[Span]], roots: set[str]) -> None:
        """One batch: trace id -> its spans (traces in first-appearance order); ``roots``: the
        trace ids that got a root span."""

    def add(self, span: Span) -> None:
        """One span."""

    def warn(self, trace_id: str, message: str) -> None:
        """A warning about a trace (kept even when none of its spans is)."""

    def zero_start(self, trace_id: str) -> None:
        """A span of this trace was read with a start of 0 (decided once the trace is whole)."""

    def alias(self, trace_id: str, span_id: str, name: str) -> None:
        """The reader made up ``span_id``; messages name that span ``name``."""


class OpenTrace:
    """A trace being gathered: its spans in read order, whether a root came, its warnings."""

    __slots__ = ("aliases", "has_root", "last", "spans", "suppressed", "warnings", "zero_starts")

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.has_root = False
        self.last = 0
        self.warnings: list[str] = []
        self.suppressed = 0
        #: Spans read with a start of 0 (see the module docstring).
        self.zero_starts = 0
        #: Span ids the reader made up -> the input's name for the span (``Trace.id_aliases``).
        self.aliases: dict[str, str] = {}

    def warn(self, message: str) -> None:
        if message in self.warnings:
            return
        if len(self.warnings) < MAX_TRACE_WARNINGS:
            self.warnings.append(message)
        else:
            self.suppressed += 1


class TraceAssembler:
    """Collects spans by trace id and hands out complete traces (see the module docstring)."""

    def __init__(
        self,
        source: str,
        *,
        window_spans: int = DEFAULT_WINDOW_SPANS,
        max_open_spans: int = DEFAULT_MAX_OPEN_SPANS,
        on_late: Callable[[str], None] | None = None,
        on_empty: Callable[[str], None] | None = None,
    ) -> None:
        self.source = source
        self.window_spans = window_spans
        self.max_open_spans = max_open_spans
        #: Open traces, least recently touched first.
        self._open: OrderedDict[str, OpenTrace] = OrderedDict()
        #: Idle traces without a root, oldest first.
        self._waiting: OrderedDict[str, OpenTrace] = OrderedDict()
        self._flushed: OrderedDict[str, None] = OrderedDict()
        self._on_late = on_late
        #: Receives the warnings of a trace all of whose spans were dropped (nothing to emit).
        self.on_empty = on_empty
        self.spans_read = 0
        self.open_spans = 0
        self.traces_emitted = 0

    # -- input -------------------------------------------------------------------------------
    def _get(self, trace_id: str) -> OpenTrace:
        o = self._open.get(trace_id)
        if o is not None:
            self._open.move_to_end(trace_id)
            return o
        return self._reopen(trace_id)

    def _reopen(self, trace_id: str) -> OpenTrace:
        """A trace that is not open: a waiting one, or a new one (maybe a late part)."""
        o = self._waiting.pop(trace_id, None)
        if o is None:
            o = OpenTrace()
            if trace_id in self._flushed:
                o.warn(
                    "some spans of this trace arrived after it was emitted (more than "
                    f"{self.window_spans} spans after its last span); they are reported as a separate part"
                )
                if self._on_late is not None:
                    self._on_late(trace_id)
        self._open[trace_id] = o
        return o

    def add_spans(self, trace_id: str, spans: list[Span], has_root: bool) -> None:
        """Add spans of one trace (readers group a batch by trace id first: one lookup per group)."""
        o = self._get(trace_id)
        o.spans.extend(spans)
        if has_root:
            o.has_root = True
        self.spans_read += len(spans)
        self.open_spans += len(spans)
        o.last = self.spans_read

    def add_groups(self, groups: dict[str, list[Span]], roots: set[str]) -> None:
        """Add one batch (a JSONL line): ``groups`` maps trace id -> its spans, in the order the
        traces first appear in the batch; ``roots`` holds the trace ids that got a root span.

        The same as ``add_spans`` per group, in one loop (a batch holds about a hundred groups).
        """
        read = self.spans_read
        open_ = self._open
        added = 0
        for trace_id, spans in groups.items():
            n = len(spans)
            read += n
            o = open_.get(trace_id)
            if o is None:
                o = self._reopen(trace_id)
            else:
                open_.move_to_end(trace_id)
            if o.spans:
                o.spans += spans
            else:
                o.spans = spans  # the batch's list is handed over, not copied
            if trace_id in roots:
                o.has_root = True
            added += n
            o.last = read
        self.spans_read = read
        self.open_spans += added

    def add(self, span: Span) -> None:
        self.add_spans(span.trace_id, [span], span.parent_id is None)

    def warn(self, trace_id: str, message: str) -> None:
        """Attach a warning to a trace (opening it if needed, so the warning is not lost)."""
        o = self._open.get(trace_id) or self._waiting.get(trace_id)
        if o is None:
            o = self._get(trace_id)
        o.warn(message)

    def zero_start(self, trace_id: str) -> None:
        """A span of this trace was read with a start of 0 (decided when the trace is emitted)."""
        o = self._open.get(trace_id) or self._waiting.get(trace_id)
        if o is None:
            o = self._get(trace_id)
        o.zero_starts += 1

    def alias(self, trace_id: str, span_id: str, name: str) -> None:
        """The reader made up ``span_id``; messages name that span ``name`` (ids the input has)."""
        o = self._open.get(trace_id) or self._waiting.get(trace_id)
        if o is None:
            o = self._get(trace_id)
        o.aliases[span_id] = name

    # -- output ------------------------------------------------------------------------------
    def _emit(self, trace_id: str, o: OpenTrace, extra: str | None = None) -> Trace | None:
        """The trace to hand out (``None`` when all its spans were dropped)."""
        self.open_spans -= len(o.spans)
        if o.zero_starts:
            resolve_zero_starts(o)
        if not o.spans:
            if self.on_empty is not None:
                for w in o.warnings:
                    self.on_empty(f"trace {trace_id}: {w}")
            return None
        if extra:
            o.warn(extra)
        warnings = o.warnings
        if o.suppressed:
            warnings.append(f"{o.suppressed} more warnings not shown")
        # Duplicate span ids stay in the trace: the analysis keeps the first and says so (tree.py),
        # so the reader does not warn too (its "all kept" contradicted the analysis's "dropped").
        spans = o.spans
        self._flushed[trace_id] = None
        if len(self._flushed) > REMEMBER_FLUSHED:
            self._flushed.popitem(last=False)
        self.traces_emitted += 1
        trace = Trace(trace_id, spans, warnings, self.source)
        if o.aliases:
            trace.id_aliases = o.aliases
        return trace

    def ready(self) -> Iterator[Trace]:
        """Traces judged complete now (call at a batch/line boundary)."""
        limit = self.spans_read - self.window_spans
        open_ = self._open
        while open_:
            trace_id, o = open_.popitem(last=False)
            if o.last > limit:  # still open: put it back in front (once per call)
                open_[trace_id] = o
                open_.move_to_end(trace_id, last=False)
                break
            if o.has_root:
                t = self._emit(trace_id, o)
                if t is not None:
                    yield t
            else:
                self._waiting[trace_id] = o
        while self.open_spans > self.max_open_spans:
            pool = self._waiting or self._open
            trace_id, o = pool.popitem(last=False)
            t = self._emit(
                trace_id,
                o,
                f"emitted before it was complete: more than {self.max_open_spans} spans were open at once",
            )
            if t is not None:
                yield t

    def finish(self) -> Iterator[Trace]:
        """Everything still open, at the end of the input."""
        for pool in (self._open, self._waiting):
            while pool:
                trace_id, o = pool.popitem(last=False)
                t = self._emit(trace_id, o)
                if t is not None:
                    yield t


def resolve_zero_starts(o: OpenTrace) -> None:
    """Keep the spans that start at 0 when the whole trace is in relative time; else drop them."""
    if all(s.start_ns < RELATIVE_LIMIT_NS for s in o.spans):
        return
    kept = [s for s in o.spans if s.start_ns != 0]
    dropped = len(o.spans) - len(kept)
    if dropped:
        o.spans = kept
        o.has_root = any(s.parent_id is None for s in kept)
        o.warn(
            f"{dropped} span(s) dropped: start time 0 (not set) in a trace whose other spans have "
            "absolute times"
        )

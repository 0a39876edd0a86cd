"""Spans partitioned by trace id: the map side's writer and the reduce side's reader.

Why a format of our own on top of msgpack: a span of a realistic Collector file carries about 1 KB
of resource attributes that it shares with a thousand other spans (readers hand out one dict per
distinct resource and attribute list). Written span by span, every span would carry that kilobyte
again and the reduce side would build a dict per span. Here each distinct dict is written once per
stream (a table, reset past :data:`MAX_TABLE` entries) and spans refer to it by number, so the
reduce side shares dicts exactly as a plain read does (the layer rules cache by dict identity).
Measured against the alternatives in docs/analyzer.md (Decisions, "Partition format").

A stream (one file per map task and partition) is a sequence of frames, each a 4-byte big-endian
length and a msgpack array ``[reset, new_dicts, groups]``. A group is the spans of one trace from
one input line, with the trace's place in the input (:data:`Place`: file index, byte offset of the
line, index of the group in the line), whether it holds a root, and the warnings the reader
attached to the trace.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import msgspec

from tracekit.analyze.model import Event, Link, RefType, Span, SpanKind, StatusCode

#: Where a trace's first span is in the input: (file index, byte offset of its line, group index in
#: the line). The same whatever the chunking, so it orders traces identically in every plan.
Place = tuple[int, int, int]

#: Distinct dicts a stream's table holds before it starts again (bounds the writer's memory).
MAX_TABLE = 16_384
#: A partition's buffered frame is written out past this many bytes.
FLUSH_BYTES = 1 << 20


class WireSpan(msgspec.Struct, array_like=True, gc=False):
    """A span without its trace id (the group has it), dicts as table numbers."""

    span_id: str
    parent_id: str | None
    name: str
    kind: int
    start_ns: int
    end_ns: int
    service: str
    status: int
    status_message: str
    attributes: int
    resource: int
    events: tuple[Event, ...] = ()
    links: tuple[Link, ...] = ()
    follows: bool = False


class Group(msgspec.Struct, array_like=True, gc=False):
    trace_id: str
    file: int
    offset: int
    index: int
    root: bool
    spans: list[WireSpan]
    warnings: list[str] = []
    #: Spans of the trace read with a start of 0 (``SpanSink.zero_start``).
    zero_starts: int = 0
    #: Span ids the reader made up -> the input's name for them (``SpanSink.alias``).
    aliases: dict[str, str] = {}


class Frame(msgspec.Struct, array_like=True, gc=False):
    reset: bool
    dicts: list[dict[str, Any]]
    groups: list[Group]


_encoder = msgspec.msgpack.Encoder()
_frame_decoder = msgspec.msgpack.Decoder(Frame)


def partition_of(trace_id: str, count: int) -> int:
    """The partition of a normalised trace id: a hash, so that ids sharing a prefix or a suffix (test
    generators, some SDKs' sequential ids) still spread evenly."""
    return zlib.crc32(trace_id.encode("ascii", "surrogateescape")) % count


class ByteSink(Protocol):
    """Where a partition stream's frames go: a binary file, or anything else with ``write(bytes)``."""

    def write(self, data: bytes, /) -> object: ...


class _Stream:
    """One partition's buffered frame and dict table."""

    __slots__ = ("dicts", "groups", "new_dicts", "out", "reset", "size")

    def __init__(self, out: ByteSink) -> None:
        self.out = out
        self.dicts: dict[int, tuple[int, dict[str, Any]]] = {}
        self.new_dicts: list[dict[str, Any]] = []
        self.groups: list[Group] = []
        self.reset = False
        self.size = 0

    def ref(self, d: dict[str, Any]) -> int:
        entry = self.dicts.get(id(d))
        if entry is not None:
            return entry[0]
        n = len(self.dicts)
        self.dicts[id(d)] = (n, d)  # the dict is held, so its id stays its own
        self.new_dicts.append(d)
        self.size += 64 * len(d)
        return n

    def make_room(self, refs: int) -> None:
        """Start a new table (in a new frame) when ``refs`` more entries could overflow this one.

        Called before a group's spans take their numbers, never in the middle: every number of a
        group refers to the table of the frame the group is written in.
        """
        if self.dicts and len(self.dicts) + refs > MAX_TABLE:
            self.flush()
            self.dicts.clear()
            self.reset = True

    def flush(self) -> None:
        if self.groups or self.new_dicts:
            data = _encoder.encode(Frame(self.reset, self.new_dicts, self.groups))
            self.out.write(len(data).to_bytes(4, "big"))
            self.out.write(data)
        self.new_dicts = []
        self.groups = []
        self.reset = False
        self.size = 0


class PartitionWriter:
    """A :class:`~tracekit.analyze.readers.assemble.SpanSink` that writes spans to partitions.

    The map side sets :attr:`file` and :attr:`offset` (the byte offset of the line being converted)
    before feeding each line; every group of that line gets its place from them.
    """

    def __init__(self, outputs: Sequence[ByteSink]) -> None:
        self.streams = [_Stream(out) for out in outputs]
        self.count = len(outputs)
        self.file = 0
        self.offset = 0
        self._index = 0
        self._offset_seen = -1
        #: What the reader said about a trace since its last group: warnings, zero starts, aliases.
        self._warnings: dict[str, list[str]] = {}
        self._zero: dict[str, int] = {}
        self._aliases: dict[str, dict[str, str]] = {}
        self.spans_written = 0

    def _place(self) -> int:
        if self.offset != self._offset_seen:
            self._offset_seen = self.offset
            self._index = 0
        index = self._index
        self._index += 1
        return index

    def add_groups(self, groups: dict[str, list[Span]], roots: set[str]) -> None:
        for trace_id, spans in groups.items():
            self._group(trace_id, spans, trace_id in roots)

    def add(self, span: Span) -> None:
        self._group(span.trace_id, [span], span.parent_id is None)

    def warn(self, trace_id: str, message: str) -> None:
        """A warning about a trace: it travels with the trace's next group (or alone, at the end
        of the line, when the trace has no span left: :meth:`end_line`)."""
        self._warnings.setdefault(trace_id, []).append(message)

    def zero_start(self, trace_id: str) -> None:
        self._zero[trace_id] = self._zero.get(trace_id, 0) + 1

    def alias(self, trace_id: str, span_id: str, name: str) -> None:
        self._aliases.setdefault(trace_id, {})[span_id] = name

    def _notes(self, trace_id: str) -> tuple[list[str], int, dict[str, str]]:
        """What is pending about a trace (and no longer pending)."""
        return (
            self._warnings.pop(trace_id, None) or [],
            self._zero.pop(trace_id, 0),
            self._aliases.pop(trace_id, None) or {},
        )

    def _group(self, trace_id: str, spans: list[Span], root: bool) -> None:
        stream = self.streams[partition_of(trace_id, self.count)]
        stream.make_room(2 * len(spans))
        ref = stream.ref
        wire = [
            WireSpan(
                s.span_id,
                s.parent_id,
                s.name,
                s.kind,
                s.start_ns,
                s.end_ns,
                s.service,
                s.status,
                s.status_message,
                ref(s.attributes),
                ref(s.resource),
                s.events,
                s.links,
                s.ref_type is RefType.FOLLOWS_FROM,
            )
            for s in spans
        ]
        place = self._place()
        if self._warnings or self._zero or self._aliases:
            warnings, zero, aliases = self._notes(trace_id)
            group = Group(trace_id, self.file, self.offset, place, root, wire, warnings, zero, aliases)
        else:
            group = Group(trace_id, self.file, self.offset, place, root, wire)
        stream.groups.append(group)
        self.spans_written += len(spans)
        stream.size += 200 * len(spans)
        if stream.size > FLUSH_BYTES:
            stream.flush()

    def end_line(self) -> None:
        """Warnings about traces none of whose spans was kept travel alone."""
        if self._warnings:
            pending, self._warnings = self._warnings, {}
            for trace_id, messages in pending.items():
                stream = self.streams[partition_of(trace_id, self.count)]
                stream.groups.append(
                    Group(trace_id, self.file, self.offset, self._place(), False, [], messages)
                )

    def close(self) -> None:
        self.end_line()
        for stream in self.streams:
            stream.flush()


_KINDS = tuple(SpanKind)
_STATUSES = tuple(StatusCode)


def read_groups(data: bytes) -> Iterator[tuple[Group, list[Span]]]:
    """The groups of one stream, in the order they were written, with their spans rebuilt."""
    kinds, statuses = _KINDS, _STATUSES
    follows_from, child_of = RefType.FOLLOWS_FROM, RefType.CHILD_OF
    table: list[dict[str, Any]] = []
    decoder = _frame_decoder
    view = memoryview(data)
    pos = 0
    end = len(data)
    while pos < end:
        length = int.from_bytes(view[pos : pos + 4], "big")
        pos += 4
        frame = decoder.decode(view[pos : pos + length])
        pos += length
        if frame.reset:
            table = []
        table.extend(frame.dicts)
        for group in frame.groups:
            tid = group.trace_id
            spans = [
                Span(
                    tid,
                    w.span_id,
                    w.parent_id,
                    w.name,
                    kinds[w.kind],
                    w.start_ns,
                    w.end_ns,
                    w.service,
                    statuses[w.status],
                    w.status_message,
                    table[w.attributes],
                    table[w.resource],
                    w.events,
                    w.links,
                    follows_from if w.follows else child_of,
                )
                for w in group.spans
            ]
            yield group, spans

"""The plain data model every reader emits and every processor consumes.

Readers turn OTLP JSON, Jaeger JSON and Zipkin v2 into these types and nothing else; processors and
renderers never look at a file format. Spans are immutable ``msgspec.Struct`` values: creating one
costs a fraction of a frozen dataclass, which matters at a million spans per run.

Conventions, whatever the source format:

- ids are lowercase hex: ``trace_id`` 32 characters (64-bit ids are left-padded with zeros),
  ``span_id`` 16 characters; ``parent_id`` is ``None`` for a root (absent, empty or all-zero id).
- times are integer nanoseconds since the Unix epoch; ``end_ns >= start_ns`` is *not* guaranteed
  by the model (readers warn and clamp, see the readers).
- ``attributes`` and ``resource`` are plain dicts of str to str/int/float/bool or lists of them.
  Treat them as read-only: they are shared, not copied.
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec

#: The layer vocabulary, in path order (docs/design.md, "Layers"). Attribution assigns every instant of a
#: trace to exactly one of these.
LAYERS: tuple[str, ...] = (
    "client",
    "edge",
    "ingress",
    "service",
    "app",
    "sidecar",
    "db",
    "external",
    "unknown",
)


class SpanKind(enum.IntEnum):
    """OTLP span kinds, numbered as in the OTLP protobuf enum."""

    UNSPECIFIED = 0
    INTERNAL = 1
    SERVER = 2
    CLIENT = 3
    PRODUCER = 4
    CONSUMER = 5


class StatusCode(enum.IntEnum):
    """OTLP status codes, numbered as in the OTLP protobuf enum."""

    UNSET = 0
    OK = 1
    ERROR = 2


class RefType(enum.Enum):
    """How a span relates to its parent. FOLLOWS_FROM children run async and stay off the critical path."""

    CHILD_OF = "child_of"
    FOLLOWS_FROM = "follows_from"


class Event(msgspec.Struct, frozen=True, gc=False):
    """A timestamped annotation on a span (OTLP event, Jaeger log, Zipkin annotation)."""

    name: str
    time_ns: int
    attributes: dict[str, Any] = {}


class Link(msgspec.Struct, frozen=True, gc=False):
    """A reference to another span that is not the parent (OTLP link, extra Jaeger reference)."""

    trace_id: str
    span_id: str
    attributes: dict[str, Any] = {}


class Span(msgspec.Struct, frozen=True, gc=False):
    """One span, as every format reduces to it."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: SpanKind
    start_ns: int
    end_ns: int
    service: str = "unknown"
    status: StatusCode = StatusCode.UNSET
    status_message: str = ""
    attributes: dict[str, Any] = {}
    resource: dict[str, Any] = {}
    events: tuple[Event, ...] = ()
    links: tuple[Link, ...] = ()
    #: CHILD_OF unless the source says the span follows from its parent (Jaeger FOLLOWS_FROM).
    ref_type: RefType = RefType.CHILD_OF

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    def attr(self, key: str, default: Any = None) -> Any:
        """Look a key up in the span's attributes, then in its resource attributes."""
        value = self.attributes.get(key)
        if value is None:
            value = self.resource.get(key, default)
        return value


class Trace(msgspec.Struct):
    """All spans a reader found for one trace id, plus what the reader had to say about them.

    Readers emit a trace once they judge it complete; the spans are in the order they were read.
    ``warnings`` are one-line, human-readable notes (dropped span, clamped time, ...) that the
    renderers show next to the trace.
    """

    trace_id: str
    spans: list[Span]
    warnings: list[str] = msgspec.field(default_factory=list)
    #: Where the spans came from (file path, or "jaeger:<url>"), for messages.
    source: str = ""
    #: Only in a partitioned analysis: where in the inputs the trace's first span is, ``(file, byte
    #: offset of its line, index in the line)``, the order the merge puts traces in
    #: (``tracekit/analyze/mapreduce.py``). ``None`` otherwise.
    order: tuple[int, int, int] | None = None
    #: Span ids a reader made up (a Zipkin shared span split in two) -> how to name that span in
    #: messages with the id the input used, so no warning names an id the user cannot find.
    id_aliases: dict[str, str] = msgspec.field(default_factory=dict)

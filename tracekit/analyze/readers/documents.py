"""Read a whole-document JSON input element by element, so memory follows the traces, not the file.

A Jaeger query-API answer is one object, ``{"data": [trace, trace, ...]}``, often on one line; a
Zipkin v2 answer is one array of spans (or of traces, arrays of spans). Decoding either whole holds
the file, its decoded form and the model spans at once (about 4.7x the file). :func:`iter_values`
instead scans the bytes in fixed-size chunks and hands over each element of the top-level array
(Zipkin, Jaeger's bare list of traces) or of the top-level object's streamed key (``data`` for
Jaeger) as soon as its closing bracket is read. Everything else of a top-level object (``errors``,
``total``; a bare Jaeger trace object entirely) is kept and handed over after the value ends, with
the streamed array left empty, so the format's own decoder reads it as before.

The scanner only finds structure: strings (escapes included) and brackets, vectorised with numpy
over each chunk, so it runs at memory speed. Whether an element is valid JSON of the right shape
is for msgspec to say when the element is decoded. Several top-level values one after another
(``jq . traces.jsonl`` writes that) come as several documents.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import numpy as np

from tracekit.analyze.readers.detect import BOM
from tracekit.errors import TraceFormatError

#: Bytes read per step. Memory holds one chunk plus the element being completed.
CHUNK_BYTES = 1 << 20

_QUOTE, _BACKSLASH, _COMMA = 34, 92, 44
_OPEN = (91, 123)  # [ {
_CLOSE = (93, 125)  # ] }
_WS = b" \t\r\n"
#: The deepest structure :func:`iter_values` looks at: ``{"data": [`` opens at depth 2.
_MAX_DEPTH = 2


@dataclass
class Element:
    """One element of the streamed array: its bytes, its index, which document it belongs to."""

    data: bytes
    index: int
    document: int
    #: Where it sits, as a JSON path (``$.data[3]``, ``$[3]``): messages name the element.
    path: str


@dataclass
class Rest:
    """A top-level value once it has ended, with its streamed array emptied (or whole, when it had
    none); ``streamed``: whether elements of it were handed over before."""

    data: bytes
    document: int
    streamed: bool


class _Structure:
    """Per-chunk string and depth state, carried from one chunk to the next."""

    def __init__(self) -> None:
        self.in_string = False
        self.escape_next = False
        self.depth = 0

    def scan(self, chunk: bytes) -> tuple[list[int], list[int]]:
        """The structural bytes of ``chunk`` (brackets and commas outside strings) down to depth 2:
        their positions and the depth after each. Only candidate positions are counted, so memory
        stays a few bytes per byte of the chunk."""
        a = np.frombuffer(chunk, np.uint8)
        quote = a == _QUOTE
        backslashes = np.flatnonzero(a == _BACKSLASH)
        if backslashes.size or self.escape_next:
            escaped = np.zeros(a.size, dtype=bool)
            if self.escape_next:
                escaped[0] = True
            self.escape_next = False
            last = a.size - 1
            for p in backslashes.tolist():
                if escaped[p]:
                    continue  # an escaped backslash escapes nothing
                if p < last:
                    escaped[p + 1] = True
                else:
                    self.escape_next = True
            quote &= ~escaped
        quotes = np.flatnonzero(quote)
        del quote
        opens = (a == _OPEN[0]) | (a == _OPEN[1])
        closes = (a == _CLOSE[0]) | (a == _CLOSE[1])
        candidates = np.flatnonzero(opens | closes | (a == _COMMA))
        # a byte is inside a string when an odd number of quotes precede it (with the carry)
        inside = (np.searchsorted(quotes, candidates) + int(self.in_string)) & 1
        positions = candidates[inside == 0]
        delta = opens[positions].astype(np.int32) - closes[positions]
        depth = self.depth + np.cumsum(delta, dtype=np.int64)
        if quotes.size & 1:
            self.in_string = not self.in_string
        if depth.size:
            self.depth = int(depth[-1])
        # Only the top two levels matter (a streamed element's own brackets and commas do not): the
        # elements' insides never reach the Python loop.
        shallow = depth <= _MAX_DEPTH
        return positions[shallow].tolist(), depth[shallow].tolist()


def reads_as_document(fmt_streams: bool, head: bytes, line_oriented: bool) -> bool:
    """Whether an input is read with :func:`iter_values`: a Jaeger or Zipkin input that is one
    pretty-printed document, or whose head holds no line break before its end (a document on one
    line, as the query API writes it: the line cap no longer applies to it). Several such documents
    one after another are read in turn."""
    if not fmt_streams:
        return False
    return not line_oriented or b"\n" not in head.rstrip(b"\r\n")


def _key_before(text: bytes) -> bytes | None:
    """The object key a value starting right after ``text`` belongs to (``"data": `` -> data)."""
    m = re.search(rb'"((?:[^"\\]|\\.)*)"\s*:\s*$', text[-4096:])
    return m.group(1) if m else None


def iter_values(
    stream: IO[bytes], name: str, *, key: bytes | None, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[Element | Rest]:
    """Elements of each top-level value's streamed array, then the value's :class:`Rest`.

    The streamed array is the top-level value itself when it is an array, else the array under
    ``key`` of a top-level object (``key`` None: objects are handed over whole).

    :raises TraceFormatError: the input ends inside a value, or cannot be read.
    """
    st = _Structure()
    document = 0
    rest: list[bytes] = []  # the current top-level value outside its streamed array
    elem: list[bytes] = []  # the element in progress
    level = 0  # depth of the streamed array's elements (0: not in one)
    index = 0
    streamed = False
    started = False  # inside a top-level value
    first = True
    prefix = "$"
    while True:
        try:
            chunk = stream.read(chunk_bytes)
        except (OSError, EOFError) as e:
            raise TraceFormatError(f"cannot read: {e}", path=name) from None
        if not chunk:
            break
        if first:
            first = False
            while len(chunk) < len(BOM) and (more := stream.read(len(BOM))):
                chunk += more
            if chunk.startswith(BOM):
                chunk = chunk[len(BOM) :]
        positions, depths = st.scan(chunk)
        pos = 0  # bytes of chunk before pos are handed on already
        for p, d in zip(positions, depths, strict=True):
            c = chunk[p]
            if not started:
                head = chunk[pos:p].lstrip(_WS)
                # a scalar or garbage at the top level starts a value too: the decoder names it
                if head or c in _OPEN:
                    started = True
                    document += 1
                    rest = []
                    pos = p if not head else pos
                    streamed = False
                    index = 0
            if level:
                # an element ends at a comma at the array's depth or at the array's closing bracket
                if c == _COMMA:
                    if d != level - 1:
                        continue
                elif c in _OPEN or d != level - 2:
                    continue
                elem.append(chunk[pos:p])
                data = b"".join(elem).strip(_WS)
                elem = []
                if data:
                    yield Element(data, index, document, f"{prefix}[{index}]")
                    index += 1
                if c == _COMMA:
                    pos = p + 1
                    continue
                pos, level = p, 0  # the bracket belongs to the rest; it may end the value too
            elif c == _OPEN[0] and started and d == 1:
                # the top-level value is an array: stream it
                rest.append(chunk[pos : p + 1])
                pos, level, streamed, prefix = p + 1, 2, True, "$"
                continue
            elif c == _OPEN[0] and d == 2 and key is not None:
                rest.append(chunk[pos : p + 1])
                pos = p + 1
                if _key_before(b"".join(rest)[:-1]) == key:
                    level, streamed, prefix = 3, True, f"$.{key.decode('utf-8', 'replace')}"
                continue
            if c in _CLOSE and d == 0 and started:
                rest.append(chunk[pos : p + 1])
                pos = p + 1
                yield Rest(b"".join(rest), document, streamed)
                rest = []
                started = False
        # depth-after values were used: an element's depth is counted after its opening bracket
        tail = chunk[pos:]
        if level:
            elem.append(tail)
        elif started or tail.strip(_WS):
            if not started:
                started = True
                document += 1
                streamed = False
            rest.append(tail)
    if level or elem or st.depth > 0 or st.in_string:
        raise TraceFormatError("truncated JSON (the input ends in the middle of a value)", path=name)
    if started and rest:
        yield Rest(b"".join(rest), document, streamed)

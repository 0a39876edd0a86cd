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

A document of at most :data:`WHOLE_BYTES` is split without the scanner: msgspec reads its
structure in one pass in C (an 81 MB Jaeger answer: 0.03 s against the scanner's 0.36 s), handing
out each element as a view of the bytes, which are held until the document ends. Anything that
pass cannot take whole (several documents, a cut or malformed one) goes to the scanner, which
names the element at fault, so the elements and messages are the scanner's either way.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import msgspec

from tracekit.analyze.readers.common import read_exact, replay
from tracekit.analyze.readers.detect import BOM
from tracekit.errors import TraceFormatError

#: Bytes read per step. Memory holds one chunk plus the element being completed.
CHUNK_BYTES = 1 << 20
#: Largest document split in one pass (held whole while it is read); larger ones are scanned.
WHOLE_BYTES = 128 << 20

_QUOTE, _BACKSLASH, _COMMA = 34, 92, 44
_OPEN = (91, 123)  # [ {
_CLOSE = (93, 125)  # ] }
_WS = b" \t\r\n"
#: The deepest structure :func:`iter_values` looks at: ``{"data": [`` opens at depth 2.
_MAX_DEPTH = 2


@dataclass
class Element:
    """One element of the streamed array: its bytes, its index, which document it belongs to."""

    #: The element's bytes (a view of the document when it was split in one pass).
    data: bytes | memoryview
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
        import numpy as np  # here: a process that splits its documents whole never needs it

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


_LEADING_WS = re.compile(rb"[ \t\r\n]*")
_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
#: A top-level object in one pass: its arrays as lists of raw elements, its objects' values raw.
_TOP_OBJECT = msgspec.json.Decoder(
    dict[str, list[msgspec.Raw] | dict[str, msgspec.Raw] | str | int | float | bool | None]
)


def iter_values(
    stream: IO[bytes],
    name: str,
    *,
    key: bytes | None,
    chunk_bytes: int = CHUNK_BYTES,
    size: int | None = None,
    whole_bytes: int | None = None,
) -> Iterator[Element | Rest]:
    """Elements of each top-level value's streamed array, then the value's :class:`Rest`.

    The streamed array is the top-level value itself when it is an array, else the array under
    ``key`` of a top-level object (``key`` None: objects are handed over whole). An input whose
    ``size`` is known to be at most ``whole_bytes`` (None: :data:`WHOLE_BYTES`) is split in one
    pass (see the module docstring); others (compressed ones, standard input) are scanned.

    :raises TraceFormatError: the input ends inside a value, or cannot be read.
    """
    if whole_bytes is None:
        whole_bytes = WHOLE_BYTES
    if size is None or size > whole_bytes:
        yield from _scan_values(stream, name, key=key, chunk_bytes=chunk_bytes)
        return
    try:
        head = read_exact(stream, whole_bytes + 1)  # the file may have grown since
    except (OSError, EOFError) as e:
        raise TraceFormatError(f"cannot read: {e}", path=name) from None
    if len(head) <= whole_bytes:
        values = _split_whole(head[len(BOM) :] if head.startswith(BOM) else head, key)
        if values is not None:
            del head
            yield from values
            return
    replayed = replay(head, stream)
    del head  # the replaying stream owns it now, and lets it go once read
    yield from _scan_values(replayed, name, key=key, chunk_bytes=chunk_bytes)


def _split_whole(data: bytes, key: bytes | None) -> Iterator[Element | Rest] | None:
    """:func:`iter_values`'s values of one whole document, or None when msgspec cannot take it in
    one pass (the scanner then reads it and names what is wrong)."""
    blank = _LEADING_WS.match(data)  # no copy of the document, as lstrip would make
    first = blank.end() if blank else 0
    start = data[first : first + 1]
    try:
        if start == b"[":
            return _elements(_RAW_LIST.decode(data), "$", b"[]")
        if start != b"{":
            return None
        fields = _TOP_OBJECT.decode(data)
        name = key.decode("utf-8", "replace") if key is not None else ""
        elements = fields.get(name) if key is not None else None
        if not isinstance(elements, list):
            return iter([Rest(bytes(msgspec.json.decode(data, type=msgspec.Raw)), 1, False)])
    except (msgspec.MsgspecError, RecursionError):  # msgspec stops deep nesting with the latter
        return None
    fields[name] = []
    return _elements(elements, f"$.{name}", msgspec.json.encode(fields))


def _elements(elements: list[Any], prefix: str, rest: bytes) -> Iterator[Element | Rest]:
    for index, raw in enumerate(elements):
        yield Element(memoryview(raw), index, 1, f"{prefix}[{index}]")  # a view: no copy
    yield Rest(rest, 1, True)


def _scan_values(stream: Any, name: str, *, key: bytes | None, chunk_bytes: int) -> Iterator[Element | Rest]:
    """:func:`iter_values` by the scanner, chunk by chunk."""
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

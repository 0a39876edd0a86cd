"""Read trace files into model ``Trace`` objects: ``read_traces(source, format=None, on_warning=None)``.

The format is detected from the content (``detect.py``): OTLP JSON (Collector file exporter JSONL,
single documents, Tempo ``batches``, Jaeger API v3 ``{"result": ...}``), Jaeger JSON and Zipkin v2.
``.gz`` is recognised by its magic bytes and ``"-"`` reads stdin.

Line-oriented inputs (one JSON document per line, as the Collector writes) are streamed line by
line and traces are emitted as soon as they are complete (``assemble.py`` documents the rule), so
memory is bounded by the traces still open. Jaeger and Zipkin documents (pretty-printed or on one
line) are read element by element (``documents.py``) into the same assembler; a pretty-printed OTLP
document is decoded at once.

Errors: a line that cannot be used is skipped with a warning (``on_warning``, one line naming the
file, the line and the field); when nothing usable was read, ``TraceFormatError`` (or
``UnknownFormatError`` when the content is no trace format at all) is raised instead.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import msgspec

from tracekit.analyze.model import Trace
from tracekit.analyze.readers.assemble import (
    DEFAULT_MAX_OPEN_SPANS,
    DEFAULT_WINDOW_SPANS,
    SpanSink,
    TraceAssembler,
)
from tracekit.analyze.readers.common import (
    DEFAULT_MAX_LINE_BYTES,
    WarningCallback,
    WarningReporter,
    json_outline,
    open_source,
    split_error_path,
    split_frames,
)
from tracekit.analyze.readers.detect import (
    FORMAT_ALIASES,
    JAEGER,
    OTLP,
    ZIPKIN,
    detect_format,
    is_line_oriented,
    strip_bom,
)
from tracekit.analyze.readers.documents import Element, iter_values, reads_as_document
from tracekit.errors import TraceFormatError, UnknownFormatError

__all__ = ["FORMATS", "read_traces"]

#: Format names ``read_traces(format=...)`` accepts.
FORMATS = tuple(sorted(FORMAT_ALIASES))

#: What bad input makes a decoder raise. RecursionError included: the JSON decoders stop at the
#: interpreter's recursion limit (about 1,000 levels), and 10,000 nested brackets are a bad line,
#: not a bug.
DECODE_ERRORS = (
    msgspec.DecodeError,
    msgspec.ValidationError,
    UnicodeDecodeError,
    ValueError,
    OverflowError,
    RecursionError,
)

#: How messages name each format.
LABELS = {OTLP: "OTLP JSON", JAEGER: "Jaeger JSON", ZIPKIN: "Zipkin v2 JSON"}


def converter_for(
    fmt: str,
    asm: SpanSink,
    report: WarningReporter,
    window_spans: int = DEFAULT_WINDOW_SPANS,
    max_open_spans: int = DEFAULT_MAX_OPEN_SPANS,
) -> Any:
    """The converter of format ``fmt``: ``feed(data, line)`` turns a document into spans in ``asm``
    (the window knobs: how long a Zipkin document's trace parts are held, see ``zipkin.py``)."""
    if fmt == OTLP:
        from tracekit.analyze.readers.otlp import OtlpConverter

        return OtlpConverter(asm, report)
    if fmt == JAEGER:
        from tracekit.analyze.readers.jaeger import JaegerConverter

        return JaegerConverter(asm, report)
    from tracekit.analyze.readers.zipkin import ZipkinConverter

    return ZipkinConverter(asm, report, window_spans, max_open_spans)


def error_text(e: BaseException, data: bytes | None = None) -> str:
    """A decoder's complaint as one short line that names the JSON field when it knows it.

    Invalid UTF-8 and a cut-off document are recognised by checking ``data`` (the bytes that
    failed) ourselves: msgspec releases report them with different exception types and wordings,
    and the error path is the only place the checks cost anything.
    """
    if isinstance(e, RecursionError):
        return "JSON nested too deeply to read (arrays or objects more than about 1,000 levels deep)"
    if isinstance(e, UnicodeDecodeError) or (data is not None and not _is_utf8(data)):
        return "invalid UTF-8 in a string (the content is not UTF-8 text)"
    text, path = split_error_path(e)
    if path is not None:
        return f"field ${path}: {text}"
    if not isinstance(e, msgspec.ValidationError) and data is not None and json_outline(data)[0]:
        return "truncated JSON (the input ends in the middle of a value)"
    return text[:200]


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def read_traces(
    source: str | os.PathLike[str] | IO[bytes],
    *,
    format: str | None = None,
    on_warning: WarningCallback | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    window_spans: int = DEFAULT_WINDOW_SPANS,
    max_open_spans: int = DEFAULT_MAX_OPEN_SPANS,
    name: str | None = None,
) -> Iterator[Trace]:
    """Yield the traces in ``source`` (a path, ``"-"`` for stdin, or a binary file object).

    :param format: ``"otlp"``, ``"jaeger"`` or ``"zipkin"`` (aliases in ``FORMATS``); detected
        from the content when ``None``.
    :param on_warning: receives one-line warnings about the input (bad lines, dropped spans whose
        trace is unknown, late spans); per-trace notes go to ``Trace.warnings``. Without it,
        warnings go to the ``tracekit.analyze.readers`` logger.
    :param max_line_bytes: longest JSONL line accepted; longer lines are skipped, never loaded.
    :param window_spans: / ``max_open_spans``: the completeness rule's knobs (see ``assemble.py``).
    :raises TraceFormatError: nothing usable could be read (message names file, line, field).
    :raises UnknownFormatError: the content is not a trace format tracekit reads.
    """
    fmt_forced = forced_format(format)
    src = open_source(source, name=name)
    report = WarningReporter(src.name, on_warning)
    try:
        fmt = fmt_forced or detect_format(src.head, src.name)
        asm = TraceAssembler(
            src.name, window_spans=window_spans, max_open_spans=max_open_spans, on_empty=report.warn
        )
        conv = converter_for(fmt, asm, report, window_spans, max_open_spans)
        label = LABELS[fmt]
        line_oriented = is_line_oriented(src.head)
        if reads_as_document(fmt in STREAMED, src.head, line_oriented):
            for _ in feed_stream(src.stream, conv, label, src.name, report, src.size):
                yield from asm.ready()
        elif line_oriented:
            for _ in feed_lines(src.iter_lines(max_line_bytes), conv, report, max_line_bytes, label):
                yield from asm.ready()
        else:
            feed_document(strip_bom(src.read_all()), conv, label, src.name)
        yield from asm.finish()
        if conv.spans_ok == 0:
            raise unusable(report, label, src.name)
    finally:
        report.finish()
        src.close()


def forced_format(format: str | None) -> str | None:
    """``read_traces(format=...)`` as a format name (None: detect it); an unknown name is an error."""
    if format is None:
        return None
    fmt = FORMAT_ALIASES.get(format.lower())
    if fmt is None:
        raise UnknownFormatError(f"unknown format {format!r} (expected one of: otlp, jaeger, zipkin)")
    return fmt


def unusable(report: WarningReporter, label: str, name: str) -> TraceFormatError:
    """The error for a source that held no usable span: its first problem, and how many there were."""
    return unusable_error(report.first_error, report.count, label, name)


def unusable_error(
    first_error: tuple[int | None, str] | None, count: int, label: str, name: str
) -> TraceFormatError:
    """:func:`unusable` from its parts (a partitioned read adds them up over a file's chunks)."""
    if first_error is not None:
        line, message = first_error
        more = f" (and {count - 1} more problem(s); nothing usable was read)" if count > 1 else ""
        return TraceFormatError(message + more, path=name, line=line)
    return TraceFormatError(f"{label}: no spans found", path=name)


#: Formats whose documents are read element by element (``documents.py``).
STREAMED = (JAEGER, ZIPKIN)
#: Formats whose document elements convert on their own (a Jaeger trace object), so that several
#: workers can share a document, each converting every n-th element (:func:`read_document`).
#: Zipkin's cannot: the halves of a shared span, in different elements, are merged.
SLICEABLE = (JAEGER,)


@dataclass
class DocumentEnd:
    """How a document's reading ended, for :func:`document_verdict` (plain data: a map task
    returns it to the merge, which knows the spans of every slice of the document)."""

    #: An element that could not be decoded stopped the reading: the number of the last element
    #: read, and what was wrong (without the file's name).
    stop_at: int | None = None
    stop: str | None = None
    #: The first trace none of whose spans validates, and its element's number: the error if no
    #: span of the document is usable. Only the part that converts the element sees it.
    deferred: str | None = None
    deferred_at: int | None = None

    @staticmethod
    def of_parts(ends: list[DocumentEnd]) -> DocumentEnd:
        """How the reading of a document shared by several parts ended: where they all stopped,
        and the first trace with no valid span that any of them saw."""
        end = DocumentEnd(ends[0].stop_at, ends[0].stop)
        seen = [e for e in ends if e.deferred_at is not None]
        if seen:
            first = min(seen, key=lambda e: e.deferred_at or 0)
            end.deferred, end.deferred_at = first.deferred, first.deferred_at
        return end


def document_verdict(
    end: DocumentEnd, spans_ok: int, name: str
) -> tuple[TraceFormatError | None, str | None]:
    """``(error, warning)`` for the document ``name`` whose reading ended as ``end`` with
    ``spans_ok`` usable spans: a stop is the error when nothing usable came before it (as for any
    input), else a warning (a cut-off download still shows what it holds, as a bad line of a JSONL
    file does)."""
    if end.stop is not None:
        if spans_ok == 0:
            return TraceFormatError(end.stop, path=name), None
        return None, f"{end.stop}; the rest of the document was not read"
    if spans_ok == 0 and end.deferred is not None:
        return TraceFormatError(end.deferred, path=name), None
    return None, None


def feed_stream(
    stream: IO[bytes], conv: Any, label: str, name: str, report: WarningReporter, size: int | None = None
) -> Iterator[None]:
    """Convert a Jaeger or Zipkin document element by element (:func:`read_document`); yields after
    each element (the caller collects what is complete), so memory follows the traces, not the file.

    :raises TraceFormatError: nothing usable before the element or document that cannot be decoded
        (the message names the element's place, ``$.data[3]``, and the document when there are
        several); a warning when spans came before it.
    """
    end = DocumentEnd()
    yield from read_document(stream, conv, label, name, end, size=size)
    error, warning = document_verdict(end, conv.spans_ok, name)
    if warning is not None:
        report.warn(warning)
        yield
    if error is not None:
        raise error


class _Muted(WarningReporter):
    """What a slice reports about elements it does not convert: nothing (their owner reports)."""

    def __init__(self) -> None:
        super().__init__("", None)

    def warn(self, message: str, *, line: int | None = None) -> None:
        pass


def read_document(
    stream: IO[bytes],
    conv: Any,
    label: str,
    name: str,
    end: DocumentEnd,
    *,
    size: int | None = None,
    part: tuple[int, int] = (0, 1),
    at: Callable[[int], None] | None = None,
) -> Iterator[None]:
    """Read a document element by element (``documents.py``) into ``conv``; how it ended goes to
    ``end``. A document has no line numbers, even on one line: messages name the element instead.
    ``size``: the input's size, when known (a small document is split in one pass, not scanned).

    ``part=(k, n)``: convert only the elements (and rests) numbered k, k+n, k+2n... in read order;
    the others are decoded, so that every part stops where a whole reading would, but neither
    converted nor reported (:data:`SLICEABLE` formats only). ``at`` is told each element's number
    before it is converted (the partitioned analysis places traces by it).

    An element that cannot be decoded ends the reading (see :func:`document_verdict`).
    """
    k, n = part
    seq = -1
    muted = _Muted()
    report = conv.report
    try:
        for item in iter_values(stream, name, key=conv.STREAM_KEY, size=size):
            seq += 1
            owned = seq % n == k
            if owned and at is not None:
                at(seq)
            conv.report, conv.skip = (report, False) if owned else (muted, True)
            paused = gc.isenabled()
            if paused:
                gc.disable()  # as in feed_lines: the decoded containers hold no cycles
            try:
                if isinstance(item, Element):
                    conv.feed_element(item.data, item.index, item.path, None)
                    if end.deferred_at is None and conv.deferred is not None:
                        end.deferred_at = seq
                else:
                    if not item.streamed or item.data.lstrip()[:1] == b"{":
                        conv.feed(item.data, None)
                    conv.end_document()
            except DECODE_ERRORS as e:
                at_path = item.path if isinstance(item, Element) else "$"
                where = f"document {item.document}: " if item.document > 1 else ""
                raise TraceFormatError(
                    f"{label}: {where}{element_error(e, bytes(item.data), at_path)}", path=name
                ) from None
            finally:
                if paused:
                    gc.enable()
            if owned:
                yield
    except TraceFormatError as exc:
        conv.report, conv.skip = report, False
        conv.end_document()  # what was read before the problem
        end.stop_at, end.stop = max(seq, 0), exc.detail
        return
    finally:
        conv.report, conv.skip = report, False
    if conv.deferred is not None:
        at_path, first = conv.deferred
        end.deferred = f"{label}: {element_error(first, b'', at_path)}"


def element_error(e: BaseException, data: bytes, at: str) -> str:
    """:func:`error_text` for an element decoded on its own: the field's path starts at its place."""
    text, path = split_error_path(e)
    if path is not None and not isinstance(e, RecursionError):
        return f"field {at}{path}: {text}"
    message = error_text(e, data)
    return message if at == "$" else f"element {at}: {message}"


def feed_document(data: bytes, conv: Any, label: str, name: str) -> None:
    """Convert a whole-document input (or several documents one after another).

    :raises TraceFormatError: the document cannot be decoded.
    """
    try:
        conv.feed(data, None)
    except DECODE_ERRORS as e:
        if not json_outline(data)[1]:
            raise TraceFormatError(f"{label}: {error_text(e, data)}", path=name) from None
        _read_concatenated(data, conv, label, name)


def _read_concatenated(data: bytes, conv: Any, label: str, name: str) -> None:
    """Several pretty-printed documents one after another (``jq . traces.jsonl`` writes that)."""
    for n, frame in enumerate(split_frames(data), 1):
        try:
            conv.feed(frame, None)
        except DECODE_ERRORS as e:
            raise TraceFormatError(f"{label}: document {n}: {error_text(e, frame)}", path=name) from None


def feed_lines(
    lines: Iterable[tuple[int, bytes | None]],
    conv: Any,
    report: WarningReporter,
    max_line_bytes: int,
    label: str,
) -> Iterator[int]:
    """Convert a line-oriented input line by line; yields each line's number once it is converted
    (the caller collects what is complete). A line that cannot be used is a warning naming it."""
    feed = conv.feed
    for lineno, line in lines:
        if line is None:
            report.warn(f"line longer than {max_line_bytes} bytes; skipped without loading it", line=lineno)
            continue
        if lineno == 1:
            line = strip_bom(line)
        # isspace() stops at the first non-blank byte; strip() would copy a line of megabytes
        if not line or line.isspace():
            continue
        # The collector's batch becomes thousands of short-lived containers at once; the cyclic GC
        # would scan them over and over (a quarter of the read time) although they hold no cycles.
        # Pause it for the line only: the caller's code between yields runs with the GC as before.
        paused = gc.isenabled()
        if paused:
            gc.disable()
        try:
            feed(line, lineno)
        except DECODE_ERRORS as e:
            report.warn(f"{label}: {error_text(e, line)}", line=lineno)
            continue
        finally:
            if paused:
                gc.enable()
        yield lineno

"""Helpers every reader shares: opening a source, bounded line reading, id normalisation, warnings.

Readers never trust the input: ids come as hex in any case, base64, or (in synthetic files) free
text; a line can be gigabytes long; a file can be gzip, stdin or an already open binary stream.
This module turns those into one shape (``Source``) and one id convention (lowercase hex, trace
ids 32 characters, span ids 16) so the format modules stay small.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gzip
import hashlib
import io
import logging
import os
import re
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Annotated, Any, Protocol

import msgspec

from tracekit.errors import TraceFormatError

log = logging.getLogger("tracekit.analyze.readers")

#: Callback that receives one-line, human-readable warnings (bad line, late span, ...).
WarningCallback = Callable[[str], None]

#: How many bytes detection looks at. Markers sit in the first few hundred bytes of every real file.
HEAD_BYTES = 64 * 1024

#: Longest line a line-oriented (JSONL) reader accepts before skipping it with an error. A collector
#: line is one batch (a few MiB at most); the cap keeps a corrupt multi-GB line out of memory.
DEFAULT_MAX_LINE_BYTES = 256 * 1024 * 1024

#: At most this many per-line warnings per source are reported one by one; the rest are counted.
MAX_REPORTED_WARNINGS = 50

GZIP_MAGIC = b"\x1f\x8b"


class BadId(ValueError):
    """An id that cannot be normalised (wrong length, empty); the span carrying it is dropped."""


# --------------------------------------------------------------------------------------------
# Sources


class _ByteReader(Protocol):
    """What a source is read through: a file, stdin's buffer, a socket file or a ``GzipFile``."""

    def read(self, size: int = -1, /) -> bytes: ...


class _ChainRaw(io.RawIOBase):
    """A raw stream that replays ``head`` and then continues with ``rest``.

    Detection has to look at the first bytes of stdin or a gzip stream, which cannot seek back;
    replaying the head lets the readers see the whole content through one ``BufferedReader``.
    """

    def __init__(self, head: bytes, rest: _ByteReader) -> None:
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            # an empty slice would still hold the head's bytes: let them go once replayed
            self._head = self._head[n:] if n < len(self._head) else memoryview(b"")
            return n
        data = self._rest.read(len(b))
        if not data:
            return 0
        n = len(data)
        b[:n] = data
        return n


class Source:
    """One input, opened: a display name, its first bytes (for detection) and a buffered stream."""

    def __init__(
        self,
        name: str,
        head: bytes,
        stream: IO[bytes],
        closers: list[Any],
        compressed: bool = False,
        size: int | None = None,
    ) -> None:
        self.name = name
        self.head = head
        self.stream = stream
        self._closers = closers
        #: gzip: byte offsets into the stream are not offsets into the file.
        self.compressed = compressed
        #: Bytes the stream holds, when known before reading it (a plain local file).
        self.size = size

    def close(self) -> None:
        for c in reversed(self._closers):
            with contextlib.suppress(OSError):  # closing a broken pipe is not worth a traceback
                c.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read_all(self) -> bytes:
        """The whole (decompressed) content. Used for single-document formats; see the docs' limits."""
        try:
            return self.stream.read()
        except (OSError, EOFError, gzip.BadGzipFile) as e:
            raise TraceFormatError(f"cannot read: {_oserror_text(e)}", path=self.name) from None

    def iter_lines(self, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[tuple[int, bytes | None]]:
        """Yield ``(line_number, bytes)``; ``bytes`` is ``None`` for a line longer than the cap.

        An over-long line is skipped in ``max_line_bytes`` chunks, so memory never holds more than
        one chunk of it; the caller reports it as a bad line.
        """
        readline = self.stream.readline
        lineno = 0
        try:
            while True:
                line = readline(max_line_bytes)
                if not line:
                    return
                lineno += 1
                if len(line) >= max_line_bytes and not line.endswith(b"\n"):
                    del line
                    while True:  # discard the rest of the line, chunk by chunk
                        chunk = readline(max_line_bytes)
                        if not chunk or chunk.endswith(b"\n"):
                            break
                    yield lineno, None
                    continue
                yield lineno, line
        except (OSError, EOFError, gzip.BadGzipFile) as e:
            raise TraceFormatError(
                f"cannot read after line {lineno}: {_oserror_text(e)}", path=self.name
            ) from None


def _oserror_text(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or e.__class__.__name__


def open_source(source: str | os.PathLike[str] | IO[bytes], *, name: str | None = None) -> Source:
    """Open a path, a URL (``s3://``, ``gs://``, any fsspec protocol), ``"-"`` (stdin) or a binary
    file object; gzip is recognised by its magic bytes.

    Raises ``TraceFormatError`` (one line, naming the file) when the file cannot be opened.
    """
    closers: list[Any] = []
    raw: _ByteReader
    compressed = False
    if isinstance(source, (str, os.PathLike)):
        display = name or os.fspath(source)
        if os.fspath(source) == "-":
            display = name or "<stdin>"
            raw = sys.stdin.buffer
        elif is_url(os.fspath(source)):
            raw = open_url(os.fspath(source), display)
            closers.append(raw)
        else:
            try:
                raw = open(Path(source), "rb")  # noqa: SIM115 - closed by Source.close
            except OSError as e:
                raise TraceFormatError(f"cannot open: {_oserror_text(e)}", path=display) from None
            closers.append(raw)
    else:
        raw = source
        display = name or str(getattr(source, "name", "<stream>"))
    try:
        magic = read_exact(raw, 2)
        if magic == GZIP_MAGIC:
            raw = gzip.GzipFile(fileobj=_PrefixedReader(magic, raw), mode="rb")
            closers.append(raw)
            magic = b""
            compressed = True
        head = magic + read_exact(raw, HEAD_BYTES - len(magic))
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        for c in closers:
            c.close()
        raise TraceFormatError(f"cannot read: {_oserror_text(e)}", path=display) from None
    stream = replay(head, raw)
    return Source(display, head, stream, closers, compressed, None if compressed else _file_size(raw))


def _file_size(raw: Any) -> int | None:
    """The size of a regular file read from its start, else None (pipes, sockets, URLs)."""
    if not isinstance(raw, io.FileIO | io.BufferedReader) or raw is sys.stdin.buffer:
        return None
    try:
        st = os.fstat(raw.fileno())
    except (OSError, ValueError):
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def is_url(path: str) -> bool:
    """Whether an input names a URL (``s3://bucket/key``, ``file:///tmp/x``) rather than a path."""
    scheme, sep, _ = path.partition("://")
    return bool(sep) and scheme.replace("+", "").replace("-", "").isalnum() and len(scheme) > 1


def open_url(url: str, display: str | None = None) -> IO[bytes]:
    """A URL opened for reading through fsspec (the ``dask`` extra); one-line errors naming it."""
    try:
        import fsspec
    except ImportError:
        raise TraceFormatError(
            "reading URLs needs fsspec (pip install 'tracekit[dask]')", path=display or url
        ) from None
    try:
        return fsspec.open(url, "rb").open()
    except (OSError, ValueError, ImportError) as e:
        raise TraceFormatError(f"cannot open: {_oserror_text(e)}", path=display or url) from None


def read_exact(f: _ByteReader, n: int) -> bytes:
    """Read up to ``n`` bytes, looping over short reads (pipes and sockets return partial chunks)."""
    parts: list[bytes] = []
    while n > 0:
        chunk = f.read(n)
        if not chunk:
            break
        parts.append(chunk)
        n -= len(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)  # one read: no copy of a large document


def replay(head: bytes, rest: _ByteReader, buffer_size: int = 1 << 20) -> IO[bytes]:
    """``head`` (bytes already read from ``rest``) and then the rest, as one buffered stream."""
    return io.BufferedReader(_ChainRaw(head, rest), buffer_size=buffer_size)


class _PrefixedReader(io.RawIOBase):
    """Gives ``GzipFile`` the two magic bytes detection already consumed from a non-seekable stream."""

    def __init__(self, prefix: bytes, rest: _ByteReader) -> None:
        self._chain = _ChainRaw(prefix, rest)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        return self._chain.readinto(b)


# --------------------------------------------------------------------------------------------
# Ids

_B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_")


def _hash_id(value: str, nbytes: int) -> str:
    return hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=nbytes).hexdigest()


def _b64_lengths(nbytes: int) -> tuple[int, int]:
    """Lengths of ``nbytes`` bytes in base64, padded and unpadded (16 -> 24, 22; 8 -> 12, 11)."""
    return (4 * ((nbytes + 2) // 3), (8 * nbytes + 5) // 6)


def normalize_id(value: Any, nbytes: int, *, base64_ok: bool, free_text_ok: bool = False) -> str:
    """Lowercase hex of ``nbytes`` bytes from hex (any case, shorter ids left-padded) or base64.

    :param base64_ok: accept base64 (OTLP JSON written by protobuf->JSON tools such as Tempo).
    :param free_text_ok: map ids that are neither hex nor base64 (``"span-1"`` in synthetic Jaeger
        files) to a stable hash, so parent references still match; the caller warns.
    :raises BadId: empty, longer than ``nbytes``, or undecodable.
    """
    if value is None or value == "":
        raise BadId("empty")
    if isinstance(value, int):  # some writers emit 64-bit ids as JSON numbers
        if value < 0:
            value &= (1 << 64) - 1
        value = format(value, "x")
    if not isinstance(value, str):
        raise BadId(f"not a string: {value!r:.40}")
    width = nbytes * 2
    n = len(value)
    try:
        bytes.fromhex(value if n % 2 == 0 else "0" + value)
        is_hex = True
    except ValueError:
        is_hex = False
    if is_hex and base64_ok and n in _b64_lengths(nbytes) and n != width:
        # "AAAAAAAAAAAAAAAAAAAAAA" is hex too: an id of exactly base64 length is read as base64
        is_hex = False
    if is_hex:
        if n > width:
            # A 128-bit id where 64 bits are expected: keep the low half only if the high half is zero.
            if n == width * 2 and set(value[:width]) == {"0"}:
                return value[width:].lower()
            raise BadId(f"{n} hex characters, expected at most {width}")
        return value.lower().rjust(width, "0")
    if base64_ok and set(value) <= _B64_CHARS:
        padded = value + "=" * (-len(value) % 4)
        try:
            raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if raw and len(raw) <= nbytes:
            return raw.hex().rjust(width, "0")
        if raw:
            raise BadId(f"base64 id of {len(raw)} bytes, expected {nbytes}")
    if free_text_ok:
        return _hash_id(value, nbytes)
    raise BadId(f"not hex{' or base64' if base64_ok else ''}: {value!r:.40}")


#: ``canonical_ids``: maps a hex digit to "0", a comma to itself and every other byte to "x".
_CANON_TABLE = bytes(
    ord("0") if chr(c) in "0123456789abcdef" else ord(",") if c == ord(",") else ord("x") for c in range(256)
)
#: What a canonical span id and its separating comma become through ``_CANON_TABLE``.
_CANON_ID = b"0" * 16 + b","
#: A span id of zeros: every format reads it as "no parent".
ZERO_SPAN_ID = "0000000000000000"


def canonical_ids(ids: list[Any], zero_ok: bool = True) -> bool:
    """Whether every id is a span id as :func:`normalize_id` returns it (16 lowercase hex
    characters), and, unless ``zero_ok``, none is all zeros (read as "no parent").

    The readers' fast paths keep such ids unchanged instead of a ``len``, a ``fromhex`` and a
    ``lower`` per id: a few passes in C over the ids joined with commas, where ``translate``
    reduces the text to its shape (hex digit, comma, anything else), which must be exactly
    "16 hex digits, comma" n times; then 16 zeros in a row can only be a whole id.
    """
    n = len(ids)
    if not n:
        return True
    try:
        text = ",".join(ids)  # TypeError: a missing id, or one written as a number
    except TypeError:
        return False
    if len(text) != 17 * n - 1 or not text.isascii():
        return False
    if text.encode("ascii").translate(_CANON_TABLE) != (_CANON_ID * n)[:-1]:
        return False
    return zero_ok or ZERO_SPAN_ID not in text


def is_all_zero(value: str) -> bool:
    return value.strip("0") == ""


def looks_hex(value: Any) -> bool:
    if not isinstance(value, str):
        return isinstance(value, int)
    try:
        bytes.fromhex(value if len(value) % 2 == 0 else "0" + value)
    except ValueError:
        return False
    return True


def derived_span_id(span_id: str, salt: str) -> str:
    """A stable, unique-enough span id derived from another (Zipkin shared server halves)."""
    return _hash_id(f"{span_id}/{salt}", 8)


# --------------------------------------------------------------------------------------------
# Warnings


class WarningReporter:
    """Sends source-level warnings to ``on_warning`` (or the log), capping a flood of similar ones."""

    def __init__(self, source: str, on_warning: WarningCallback | None) -> None:
        self.source = source
        self._emit = on_warning or log.warning
        self.count = 0
        #: The first problem as ``(line, message)``: raised when nothing usable was read.
        self.first_error: tuple[int | None, str] | None = None

    def warn(self, message: str, *, line: int | None = None) -> None:
        where = self.source if line is None else f"{self.source}:{line}"
        text = f"{where}: {message}"
        if self.first_error is None:
            self.first_error = (line, message)
        self.count += 1
        if self.count <= MAX_REPORTED_WARNINGS:
            self._emit(text)

    def finish(self) -> None:
        if self.count > MAX_REPORTED_WARNINGS:
            self._emit(f"{self.source}: {self.count - MAX_REPORTED_WARNINGS} more warnings not shown")


#: The latest instant a timestamp may name: nanoseconds since 1970 in a signed 64-bit integer (the
#: year 2262; OTLP's fixed64 and every tool's int64 nanoseconds agree up to there). A time beyond it
#: is not a time: the typed decoders refuse it and the warning names the field.
MAX_NS = 2**63 - 1
#: A timestamp or duration in microseconds (Jaeger, Zipkin) that stays within :data:`MAX_NS`.
Micros = (
    Annotated[int, msgspec.Meta(le=MAX_NS // 1000)] | Annotated[float, msgspec.Meta(le=MAX_NS // 1000)] | None
)


def us_to_ns(value: int | float | None) -> int:
    """Microseconds (Jaeger and Zipkin timestamps and durations) to integer nanoseconds; None is 0."""
    if value is None:
        return 0
    if value.__class__ is int:
        return value * 1000
    # Floats (1.559594222395e+15) are whole microseconds written in exponent form: convert the
    # microseconds first, or the float's 53-bit mantissa loses nanosecond precision.
    whole = round(value)
    return whole * 1000 if whole == value else round(value * 1000)


def split_error_path(e: BaseException) -> tuple[str, str | None]:
    """msgspec's ``Expected `int`, got `str` - at `$.a[1].b``` as the message and the path below
    ``$`` (``".a[1].b"``; None when the error names no field), on one line."""
    message, marker, path = " ".join(str(e).split()).partition(" - at `$")
    return message, path.rstrip("`") if marker else None


def field_error(exc: BaseException) -> str:
    """``Expected `int`, got `str` - at `$.duration``` as ``field duration: Expected ...`` (the
    warning for a span a reader drops and reads on)."""
    text, path = split_error_path(exc)
    if path is not None:
        return f"field {path.lstrip('.')}: {text}"
    return text[:200]


def clip(text: str, n: int = 120) -> str:
    """One line, at most ``n`` characters: error messages quote input, which can be anything."""
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 3] + "..."


#: A complete JSON string (escapes included); what is left of a string after it is unterminated.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_JSON_BRACKET = re.compile(rb"[][{}]")


def json_outline(body: bytes) -> tuple[bool, bool]:
    """``(ends inside a value, more follows the first value)`` for JSON text that failed to decode.

    Read from the bytes themselves: decoders word these cases differently from release to release,
    so their messages cannot tell them apart reliably. "Ends inside a value": a string, object or
    array is still open at the end (a file cut off mid-write). "More follows": something other
    than whitespace comes after the first top-level object or array (several documents one after
    another, as ``jq . traces.jsonl`` writes). Runs on the error path only.
    """
    bare = _JSON_STRING.sub(b"0", body)
    if b'"' in bare:  # a string that never closes runs to the end of the input
        return True, False
    depth = 0
    for m in _JSON_BRACKET.finditer(bare):
        if m.group() in b"[{":
            depth += 1
            continue
        depth -= 1
        if depth == 0:
            return False, bool(bare[m.end() :].strip())
        if depth < 0:  # a stray closing bracket: a syntax error, not a cut
            return False, False
    return depth > 0, False


def split_frames(body: bytes) -> Iterator[bytes]:
    """Split concatenated / newline-separated JSON objects (a grpc-gateway stream) into frames."""
    depth = 0
    found = 0
    start: int | None = None
    in_string = False
    escaped = False
    for m in re.finditer(rb'[{}"\\]', body):
        c = m.group()
        if in_string:
            if escaped:
                escaped = False
            elif c == b"\\":
                escaped = True
            elif c == b'"':
                in_string = False
            continue
        if escaped:  # a backslash outside a string is invalid JSON; let the decoder say so
            escaped = False
        if c == b'"':
            in_string = True
        elif c == b"{":
            if depth == 0:
                start = m.start()
            depth += 1
        elif c == b"}":
            depth -= 1
            if depth == 0 and start is not None:
                yield body[start : m.end()]
                found += 1
                start = None
    if start is not None:
        yield body[start:]  # truncated: the decoder reports it
    elif not found and body.strip():
        yield body  # not JSON objects at all: the decoder reports it

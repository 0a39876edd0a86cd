"""The two kinds of task of a partitioned analysis: map a chunk of input, reduce a partition.

Map (:func:`map_chunk`): one chunk of one input (a whole file, a line-aligned byte range of a large
JSONL file, or a whole document) is decoded once by the format's converter, whose spans go to a
:class:`~tracekit.analyze.partitions.PartitionWriter` instead of the trace assembler: each trace
id's spans land in one of N partition streams (``map-<chunk>/part-<p>``). Input warnings are kept
with their place in the chunk (line numbers are made global by the merge, which knows every
chunk's line count).

Reduce (:func:`reduce_partition`): a partition's streams are read in chunk order (which is read
order), each trace's spans gathered whole (a partition holds all the spans of its traces, so no
completeness rule is needed), and each trace analysed in the order of its first span. The trace
reports go to ``result-<p>`` as lines prefixed with their place (fixed-width hex, so byte order is
read order); the aggregates, the warnings and (for text output and ``--slowest``) the candidate
reports come back to the caller.

Tasks are plain functions of plain data (:class:`MapTask`, :class:`ReduceTask`): they run the same
in this process, in a local process pool and on Dask workers (``executors.py``). A library error
(a bad rules file) comes back as :attr:`fatal` text rather than as an exception, so that it crosses
process and network boundaries as the one line the command prints.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import resource
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from tracekit.analyze.api import Analysis, Selection
from tracekit.analyze.partitions import PartitionWriter, Place, read_groups
from tracekit.analyze.processors.aggregates import Aggregator
from tracekit.analyze.readers import DocumentEnd
from tracekit.analyze.readers.assemble import OpenTrace, resolve_zero_starts
from tracekit.analyze.readers.common import (
    DEFAULT_MAX_LINE_BYTES,
    MAX_REPORTED_WARNINGS,
    WarningReporter,
    is_url,
    open_source,
)
from tracekit.errors import TraceFormatError, TracekitError

#: Sort key of a warning: (file, byte offset, group index or -1 for the input itself, sequence).
WarningKey = tuple[int, int, int, int]
#: Distinct routes one partition tracks before folding the rest: the merge keeps the first
#: :data:`~tracekit.analyze.processors.aggregates.MAX_ROUTES` over all partitions, which is exact
#: while no partition sees more than this many.
PARTITION_MAX_ROUTES = 100_000


def place_prefix(place: Place) -> bytes:
    """A trace's place as fixed-width hex, so that byte order is read order (32 bytes)."""
    return b"%08x%016x%08x" % place


PLACE_BYTES = len(place_prefix((0, 0, 0)))


# -- storage ---------------------------------------------------------------------------------------


def join(base: str, *names: str) -> str:
    return "/".join([base.rstrip("/"), *names])


class _Atomic(io.FileIO):
    """A local file written under a temporary name and renamed into place when closed.

    A cluster may run a task twice (a worker it thought lost was only slow): both copies then write
    whole files of the same content, and a reader never sees two writers' bytes interleaved.
    """

    def __init__(self, path: str) -> None:
        self.final = path
        super().__init__(f"{path}.{os.getpid()}-{threading.get_ident()}.tmp", "wb")

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        os.replace(str(self.name), self.final)


def open_write(url: str) -> IO[bytes]:
    """A file of the partition storage (a local directory, or any fsspec URL) opened for writing.

    Object stores make a file visible whole when it is closed; local files get the same by a rename.
    """
    if is_url(url):
        import fsspec

        return fsspec.open(url, "wb", auto_mkdir=True).open()
    os.makedirs(os.path.dirname(url), exist_ok=True)
    return io.BufferedWriter(_Atomic(url), 1 << 20)


def read_bytes(url: str) -> bytes:
    if is_url(url):
        import fsspec

        with fsspec.open(url, "rb") as f:
            return f.read()
    with open(url, "rb") as f:
        return f.read()


def open_read(url: str) -> IO[bytes]:
    if is_url(url):
        import fsspec

        return fsspec.open(url, "rb").open()
    return open(url, "rb")


# -- map -------------------------------------------------------------------------------------------


@dataclass
class MapTask:
    """One chunk of one input (plain data: it crosses process and network boundaries)."""

    chunk: int
    file: int
    url: str
    name: str
    fmt: str
    line_oriented: bool
    #: Byte range ``[start, end)``: the lines that *start* in it (``end`` None: to the end).
    start: int
    end: int | None
    partitions: int
    storage: str
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    #: ``(k, n)``: of a whole document, convert every n-th element from the k-th (several map
    #: tasks share one document; ``readers.read_document``).
    part: tuple[int, int] = (0, 1)


@dataclass
class MapResult:
    chunk: int
    file: int
    #: Lines read (the merge numbers lines globally from these).
    lines: int
    spans_ok: int
    #: The partitions this chunk wrote a stream for.
    written: list[int]
    #: The chunk's first input warnings: (chunk line or None, byte offset, message).
    warnings: list[tuple[int | None, int, str]]
    warning_count: int
    #: The first problem (for "nothing usable"): (chunk line or None, byte offset, message).
    first_error: tuple[int | None, int, str] | None
    #: The input could not be read on (one line): what was mapped before stays.
    error: str | None = None
    max_rss_kb: int = 0
    fatal: str | None = None
    #: How a document's reading ended (the merge decides, knowing every part's spans).
    document_end: DocumentEnd | None = None


def stream_url(storage: str, chunk: int, partition: int) -> str:
    return join(storage, f"map-{chunk:06d}", f"part-{partition:05d}")


class _ChunkReporter(WarningReporter):
    """The chunk's input warnings, kept with their place instead of printed."""

    def __init__(self, name: str, writer: PartitionWriter) -> None:
        super().__init__(name, None)
        self.writer = writer
        self.kept: list[tuple[int | None, int, str]] = []
        self.first: tuple[int | None, int, str] | None = None

    def warn(self, message: str, *, line: int | None = None) -> None:
        entry = (line, self.writer.offset, message)
        if self.first is None:
            self.first = entry
        self.count += 1
        if self.count <= MAX_REPORTED_WARNINGS:
            self.kept.append(entry)

    def finish(self) -> None:
        """The merge says how many were not shown, over all chunks of the source."""


class _Lines:
    """``(chunk line number, line)`` for the lines that start in ``[start, end)`` of a stream (already
    positioned at ``start``, or just before it); sets ``writer.offset`` to each line's offset.
    Over-long lines come as ``None``, skipped in pieces (never loaded)."""

    def __init__(
        self, stream: IO[bytes], name: str, start: int, end: int | None, max_line_bytes: int, writer: Any
    ) -> None:
        self.stream = stream
        self.name = name
        self.pos = start
        self.end = end
        self.max = max_line_bytes
        self.writer = writer
        self.count = 0

    def _skip_rest(self) -> None:
        readline = self.stream.readline
        while True:
            part = readline(self.max)
            self.pos += len(part)
            if not part or part.endswith(b"\n"):
                return

    def __iter__(self) -> Iterator[tuple[int, bytes | None]]:
        try:
            yield from self._lines()
        except (OSError, EOFError) as e:
            raise TraceFormatError(
                f"cannot read after line {self.count}: {e.strerror or e}"
                if isinstance(e, OSError)
                else f"cannot read after line {self.count}: {e}",
                path=self.name,
            ) from None

    def _lines(self) -> Iterator[tuple[int, bytes | None]]:
        readline = self.stream.readline
        end, limit, writer = self.end, self.max, self.writer
        while end is None or self.pos < end:
            line = readline(limit)
            if not line:
                return
            self.count += 1
            writer.offset = self.pos
            self.pos += len(line)
            if len(line) >= limit and not line.endswith(b"\n"):
                del line
                self._skip_rest()
                yield self.count, None
                continue
            yield self.count, line


def _open_range(url: str, start: int) -> IO[bytes]:
    """A plain (uncompressed) file positioned just before ``start`` (the caller finds the line start)."""
    raw: Any = open_read(url)
    stream: IO[bytes] = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw, 1 << 20)
    stream.seek(start - 1)
    return stream


def map_chunk(task: MapTask) -> MapResult:
    """Decode one chunk and write its spans to the partitions (see the module docstring)."""
    from tracekit.analyze.readers import (
        LABELS,
        STREAMED,
        converter_for,
        feed_document,
        feed_lines,
        read_document,
    )
    from tracekit.analyze.readers.detect import strip_bom

    outputs: dict[int, IO[bytes]] = {}

    class _Lazy:
        """A partition's file, created with its first frame (a chunk may miss some partitions)."""

        def __init__(self, p: int) -> None:
            self.p = p

        def write(self, data: bytes) -> None:
            out = outputs.get(self.p)
            if out is None:
                out = outputs[self.p] = open_write(stream_url(task.storage, task.chunk, self.p))
            out.write(data)

    writer = PartitionWriter([_Lazy(p) for p in range(task.partitions)])
    writer.file = task.file
    report = _ChunkReporter(task.name, writer)
    conv = converter_for(task.fmt, writer, report)
    label = LABELS[task.fmt]
    lines: _Lines | None = None
    error = None
    document_end = None
    try:
        if task.start > 0:
            stream = _open_range(task.url, task.start)
            closer: Any = stream
            start = task.start
            size = None
            if stream.read(1) != b"\n":  # the line in progress belongs to the chunk before
                lines = _Lines(stream, task.name, task.start, None, task.max_line_bytes, writer)
                lines._skip_rest()
                start = lines.pos
        else:
            src = open_source(task.url, name=task.name)
            stream, closer, start, size = src.stream, src, 0, src.size
        with closer:
            if task.line_oriented:
                lines = _Lines(stream, task.name, start, task.end, task.max_line_bytes, writer)
                for _ in feed_lines(lines, conv, report, task.max_line_bytes, label):
                    writer.end_line()
            elif task.fmt in STREAMED:
                document_end = DocumentEnd()

                def at(seq: int) -> None:
                    # A document's traces are placed by element number; warnings about traces
                    # with no span left travel at the end of their element, as at a line's end.
                    writer.end_line()
                    writer.offset = seq

                for _ in read_document(
                    stream, conv, label, task.name, document_end, size=size, part=task.part, at=at
                ):
                    pass
                writer.end_line()
            else:
                try:
                    data = stream.read()
                except (OSError, EOFError) as e:
                    raise TraceFormatError(f"cannot read: {e}", path=task.name) from None
                feed_document(strip_bom(data), conv, label, task.name)
                del data
                writer.end_line()
    except TraceFormatError as exc:
        error = str(exc)
    finally:
        writer.close()
        for out in outputs.values():
            out.close()
    return MapResult(
        chunk=task.chunk,
        file=task.file,
        lines=lines.count if lines is not None else 0,
        spans_ok=conv.spans_ok,
        written=sorted(outputs),
        warnings=report.kept,
        warning_count=report.count,
        first_error=report.first,
        error=error,
        max_rss_kb=_max_rss_kb(),
        document_end=document_end,
    )


def _max_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# -- reduce ----------------------------------------------------------------------------------------


@dataclass
class ReduceTask:
    partition: int
    #: The partition's streams, in chunk order (read order).
    streams: list[str]
    #: Display name of each input, by file index (``Trace.source``, warnings).
    names: list[str]
    storage: str
    #: The ``--rules`` file as (display name, text): workers elsewhere may not see the path.
    rules: tuple[str, str] | None = None
    adjust_skew: bool = True
    trace_ids: list[str] = field(default_factory=list)
    warning_limit: int = 10
    #: ``(slowest, failed)``: keep only the candidates for the slowest and failed traces shown
    #: (text output, ``--slowest``) and write no trace JSON; ``None``: write every trace's JSON.
    keep: tuple[int, int] | None = None
    #: Values held exactly for percentiles (``aggregates.exact_values``), the caller's: the
    #: switch to sketches must not depend on a worker's environment.
    exact_budget: int | None = None


@dataclass
class ReduceResult:
    partition: int
    aggregator: Aggregator
    #: The first trace warnings as (key, message), and how many there were.
    warnings: list[tuple[WarningKey, str]]
    warning_count: int
    #: Warnings of traces none of whose spans was kept, per file: the first ones and how many.
    input_warnings: list[tuple[WarningKey, str]]
    input_warning_count: dict[int, int]
    traces_written: int
    result: str | None
    selection: Selection | None
    max_rss_kb: int = 0
    fatal: str | None = None


class _KeyedLog:
    """Warnings with their sort keys; keeps the first ``limit`` by key and counts them all."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.kept: list[tuple[WarningKey, str]] = []
        self.count = 0
        self.place: Place = (0, 0, 0)
        self.seq = 0

    def __call__(self, message: str) -> None:
        self.seq += 1
        self.add((*self.place, self.seq), message)

    def add(self, key: WarningKey, message: str) -> None:
        self.count += 1
        if not self.limit:
            return
        self.kept.append((key, message))
        if len(self.kept) > 4 * self.limit + 64:
            self.kept = sorted(self.kept)[: self.limit]

    def first(self) -> list[tuple[WarningKey, str]]:
        return sorted(self.kept)[: self.limit]


@functools.lru_cache(maxsize=4)
def _rules(rules: tuple[str, str] | None) -> Any:
    """The rule table of a ``--rules`` text (parsed once per process; the command checked it)."""
    from tracekit.analyze.rules import load_rules

    if rules is None:
        return load_rules()
    name, text = rules
    with tempfile.TemporaryDirectory(prefix="tracekit-rules-") as tmp:
        path = os.path.join(tmp, os.path.basename(name) or "rules.yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return load_rules(path)


def reduce_partition(task: ReduceTask) -> ReduceResult:
    """Assemble and analyse the traces of one partition (see the module docstring)."""
    from tracekit.analyze.model import Trace
    from tracekit.analyze.processors import Options
    from tracekit.analyze.renderers.json import encode_trace_into

    try:
        options = Options(rules=_rules(task.rules), adjust_skew=task.adjust_skew)
    except TracekitError as exc:
        return ReduceResult(task.partition, Aggregator(), [], 0, [], {}, 0, None, None, fatal=str(exc))
    # Every trace of the partition, in the order of its first span: (file, id) -> (place, trace).
    gathered: dict[tuple[int, str], tuple[Place, OpenTrace]] = {}
    for url in task.streams:
        for group, spans in read_groups(read_bytes(url)):
            key = (group.file, group.trace_id)
            entry = gathered.get(key)
            if entry is None:
                entry = gathered[key] = ((group.file, group.offset, group.index), OpenTrace())
            o = entry[1]
            if spans:
                o.spans += spans
            for message in group.warnings:
                o.warn(message)
            if group.zero_starts:
                o.zero_starts += group.zero_starts
            if group.aliases:
                o.aliases.update(group.aliases)

    log = _KeyedLog(task.warning_limit)
    inputs = _KeyedLog(MAX_REPORTED_WARNINGS)
    input_counts: dict[int, int] = {}
    keep = task.keep
    slowest, failed = keep if keep is not None else (None, 0)
    analysis = Analysis(
        options, trace_ids=task.trace_ids or None, slowest=slowest, failed=failed, on_warning=log
    )
    analysis.aggregator = Aggregator(max_routes=PARTITION_MAX_ROUTES, exact_budget=task.exact_budget)
    written = 0
    result_url = None if keep is not None else join(task.storage, f"result-{task.partition:05d}")
    out = open_write(result_url) if result_url is not None else None
    try:
        buf = bytearray()
        # Read order: the streams come in chunk order, but the parts of a shared document interleave
        # (timsort takes the usual, already ordered case in one pass).
        for (f, trace_id), (place, o) in sorted(gathered.items(), key=_place_of):
            if o.zero_starts:
                resolve_zero_starts(o)
            if not o.spans:  # every span was dropped: the reader's warnings are about the input
                for n, message in enumerate(o.warnings):
                    input_counts[f] = input_counts.get(f, 0) + 1
                    inputs.add((*place, n), f"{task.names[f]}: trace {trace_id}: {message}")
                continue
            warnings = o.warnings
            if o.suppressed:
                warnings.append(f"{o.suppressed} more warnings not shown")
            trace = Trace(trace_id, o.spans, warnings, task.names[f])
            trace.order = place
            if o.aliases:
                trace.id_aliases = o.aliases
            log.place, log.seq = place, 0
            if keep is not None:
                analysis.add(trace)
                continue
            report = analysis.analyse(trace)
            if report is None:
                continue
            buf += place_prefix(place)
            encode_trace_into(report, buf)
            buf += b"\n"
            written += 1
            if out is not None and len(buf) > 1 << 20:
                out.write(buf)
                buf.clear()
        if out is not None:
            out.write(buf)
    except TracekitError as exc:
        return ReduceResult(task.partition, Aggregator(), [], 0, [], {}, 0, None, None, fatal=str(exc))
    finally:
        if out is not None:
            out.close()
    return ReduceResult(
        partition=task.partition,
        aggregator=analysis.aggregator,
        warnings=log.first(),
        warning_count=log.count,
        input_warnings=inputs.first(),
        input_warning_count=input_counts,
        traces_written=written,
        result=result_url,
        selection=_portable(analysis.selection()) if keep is not None else None,
        max_rss_kb=_max_rss_kb(),
    )


def _place_of(item: tuple[tuple[int, str], tuple[Place, OpenTrace]]) -> Place:
    return item[1][0]


def _portable(selection: Selection) -> Selection:
    """The selection with its reports' hops as plain dicts, as :meth:`Analysis.kept` hands them out."""
    from tracekit.analyze.processors.timeline import hops_as_dicts

    for _, _, report in selection.slowest:
        report["hops"] = hops_as_dicts(report["hops"])
    for _, report in selection.failed:
        report["hops"] = hops_as_dicts(report["hops"])
    return selection


def remove_storage(storage: str) -> None:
    """Delete the partition storage of a run (streams and results)."""
    if is_url(storage):
        import fsspec

        fs, path = fsspec.core.url_to_fs(storage)
        with contextlib.suppress(FileNotFoundError):
            fs.rm(path, recursive=True)
        return
    import shutil

    shutil.rmtree(storage, ignore_errors=True)

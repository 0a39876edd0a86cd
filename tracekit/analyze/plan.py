"""The plan of a partitioned analysis: which chunks to map, how many partitions, where they go.

One plan serves every executor (``executors.py``): in this process, a local process pool, or a Dask
cluster. The plan's shape never changes the answer (traces are grouped whole and ordered by their
first span, see ``mapreduce.py``), only how the work is spread:

- **chunks**: a plain (uncompressed) line-oriented file larger than :data:`CHUNK_BYTES` is cut
  into byte ranges, each mapped on its own (a line belongs to the range it starts in); gzip
  files are one chunk each (a gzip stream cannot be entered midway). A whole document cannot be
  cut (where an element starts is known only by reading from the start): a Jaeger document is
  shared by one map task per chunk of its size, at most one per worker, each reading all of it
  and converting every n-th trace (``readers.read_document``); a Zipkin document is one map
  task (the halves of a shared span, anywhere in it, are merged);
- **partitions**: enough that one partition's traces fit a worker's memory comfortably
  (:data:`PARTITION_BYTES` of input each, a gzip file counted at :data:`GZIP_RATIO` times its
  size), and at least one per worker so that every worker has a reduce to run;
- **storage**: a directory or an fsspec URL (``s3://bucket/tmp``) that every worker can reach.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from tracekit.analyze.mapreduce import MapTask, join, open_write
from tracekit.analyze.readers import SLICEABLE, STREAMED, forced_format
from tracekit.analyze.readers.common import DEFAULT_MAX_LINE_BYTES, is_url, open_source
from tracekit.analyze.readers.detect import detect_format, is_line_oriented
from tracekit.analyze.readers.documents import reads_as_document
from tracekit.errors import TraceFormatError, TracekitError

#: Largest byte range one map task reads: the ranges of a big file go to several workers at once.
CHUNK_BYTES = 64 * 1024 * 1024
#: Input bytes per partition. A reduce holds its partition's spans as objects, about 2-3 times the
#: bytes they took as JSON with shared resources (docs/analyzer.md, memory): 128 MiB keeps a reduce
#: near 300-400 MB.
PARTITION_BYTES = 128 * 1024 * 1024
#: What a gzip file is assumed to hold per byte, for sizing partitions.
GZIP_RATIO = 8
#: Input size from which ``--jobs auto`` uses a local process pool (starting it costs ~0.3 s).
DEFAULT_MIN_BYTES = 64 * 1024 * 1024
#: Overrides :data:`DEFAULT_MIN_BYTES` (tests use small files).
MIN_BYTES_ENV = "TRACEKIT_PARALLEL_MIN_BYTES"
#: Most workers ``--jobs auto`` starts.
MAX_AUTO_JOBS = 8
#: Most workers ``--jobs N`` may ask for (a typo must not start 100,000 processes).
MAX_JOBS = 64
#: Most partitions a plan makes (each is a file per chunk in the storage).
MAX_PARTITIONS = 1024


@dataclass
class Input:
    """One input as planned: where it is, what it holds, how big it is."""

    index: int
    url: str
    name: str
    fmt: str
    line_oriented: bool
    size: int | None
    compressed: bool


@dataclass
class Plan:
    inputs: list[Input]
    #: Inputs that could not be opened or are no trace format: (file index, message).
    errors: list[tuple[int, str]]
    maps: list[MapTask]
    partitions: int
    storage: str
    #: Display name of every input by file index (those in ``errors`` too).
    names: list[str] = field(default_factory=list)


def parse_jobs(jobs: str) -> int | None:
    """``--jobs`` as a number of workers, or None for ``auto``; a bad value is a one-line error."""
    if jobs == "auto":
        return None
    try:
        n = int(jobs)
    except ValueError:
        raise TracekitError(f"--jobs {jobs!r}: expected a number or 'auto'") from None
    if n < 1:
        raise TracekitError(f"--jobs {n}: expected at least 1")
    if n > MAX_JOBS:
        raise TracekitError(f"--jobs {n}: at most {MAX_JOBS} worker processes")
    return n


def min_bytes() -> int:
    value = os.environ.get(MIN_BYTES_ENV)
    try:
        return int(value) if value else DEFAULT_MIN_BYTES
    except ValueError:
        raise TracekitError(f"{MIN_BYTES_ENV}={value!r}: expected a number of bytes") from None


def usable_cpus() -> int:
    """CPUs this process may run on (``taskset`` and container cpusets included, where known)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def local_workers(jobs: str, inputs: list[Input]) -> int:
    """How many local worker processes: 1 means in this process.

    ``auto``: one per usable CPU (at most :data:`MAX_AUTO_JOBS`) once the inputs hold
    :func:`min_bytes` (standard input and URLs count as big: their size is not known up front or
    they are slow to read); a number is honoured as given.
    """
    n = parse_jobs(jobs)
    if n is not None:
        return n
    total = 0
    for item in inputs:
        if item.size is None:
            total = min_bytes()
            break
        total += item.size * (GZIP_RATIO if item.compressed else 1)
    if total < min_bytes():
        return 1
    return max(1, min(usable_cpus(), MAX_AUTO_JOBS))


def _size(url: str) -> int | None:
    try:
        if is_url(url):
            import fsspec

            fs, path = fsspec.core.url_to_fs(url)
            return int(fs.size(path))
        st = os.stat(url)
    except (OSError, ValueError, ImportError):
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def spool_stdin(storage: str) -> str:
    """Standard input copied into the storage, so that workers can read it (and chunks can seek)."""
    url = join(storage, "stdin")
    with open_write(url) as out:
        shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
    return url


@dataclass
class Inputs:
    """What :func:`inspect_inputs` found: the usable inputs and the others' errors."""

    inputs: list[Input]
    errors: list[tuple[int, str]]
    names: list[str]


def inspect_inputs(paths: Sequence[str], storage: str, *, format: str | None = None) -> Inputs:
    """Open every input once: its format, whether it is line-oriented, its size.

    Standard input is copied into the storage first (workers cannot read this process's stdin).
    An input that cannot be opened or is no trace format is kept in ``errors`` with its one line.
    """
    fmt_forced = forced_format(format)
    inputs: list[Input] = []
    errors: list[tuple[int, str]] = []
    names: list[str] = []
    for index, path in enumerate(paths):
        name = "<stdin>" if path == "-" else path
        names.append(name)
        try:
            url = spool_stdin(storage) if path == "-" else path
            with open_source(url, name=name) as src:
                fmt = fmt_forced or detect_format(src.head, name)
                lines = is_line_oriented(src.head)
                # a one-line Jaeger or Zipkin document is read element by element, not as a line
                lines = lines and not reads_as_document(fmt in STREAMED, src.head, lines)
                inputs.append(Input(index, url, name, fmt, lines, _size(url), src.compressed))
        except TraceFormatError as exc:
            errors.append((index, str(exc)))
    return Inputs(inputs, errors, names)


def make_plan(
    found: Inputs,
    storage: str,
    *,
    workers: int,
    chunk_bytes: int | None = None,
    partitions: int | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Plan:
    """Cut the work into map tasks (chunks) and partitions (see the module docstring).

    ``chunk_bytes`` and ``partitions`` override the sizing (tests cut small files into many
    pieces); neither changes the report.
    """
    inputs = found.inputs
    total = sum((item.size or 0) * (GZIP_RATIO if item.compressed else 1) for item in inputs)
    workers = max(1, workers)
    if partitions is None:
        # A multiple of the workers: with 9 partitions on 2 workers the last one runs alone while
        # the other worker idles (about half a partition's time lost on 1M spans).
        needed = max(1, -(-total // PARTITION_BYTES))
        partitions = min(max(MAX_PARTITIONS // workers, 1) * workers, workers * -(-needed // workers))
    chunk = chunk_bytes
    if chunk is None:
        # Ranges small enough that every worker gets one, not so small that starting them dominates,
        # and of one size, so that the workers take as many each.
        rounds = -(-total // (workers * CHUNK_BYTES))
        chunk = max(1 << 20, -(-total // (workers * max(1, rounds))))
    maps: list[MapTask] = []
    for item in inputs:
        starts = [0]
        if item.line_oriented and not item.compressed and item.size and item.size > chunk:
            starts = list(range(0, item.size, chunk))
        parts = 1
        if not item.line_oriented and item.fmt in SLICEABLE and item.size:
            parts = max(1, min(workers, -(-item.size // chunk)))
        for k, start in enumerate(starts):
            end = starts[k + 1] if k + 1 < len(starts) else None
            for part in range(parts):
                maps.append(
                    MapTask(
                        chunk=len(maps),
                        file=item.index,
                        url=item.url,
                        name=item.name,
                        fmt=item.fmt,
                        line_oriented=item.line_oriented,
                        start=start,
                        end=end,
                        partitions=partitions,
                        storage=storage,
                        max_line_bytes=max_line_bytes,
                        part=(part, parts),
                    )
                )
    return Plan(inputs, found.errors, maps, partitions, storage, found.names)

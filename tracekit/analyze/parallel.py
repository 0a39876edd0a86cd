"""Parallel analysis of large trace files (``tracekit analyze --jobs N``).

Why: decoding and analysing cost about 9 µs of CPU per span in one process (docs/performance.md),
and the per-span work is interpreter-bound; the only way to go faster on the user's
machine is to use its other cores.

How: traces are split by trace id into N shards (``readers.common.Shard``). Each worker process
reads and decodes the *whole* input but builds, assembles and analyses only the spans of its own
shard, writes its traces' JSON to a temporary file and returns its aggregates. The parent adds the
aggregates up (``merge_aggregators``: the percentiles are over the union of the values, so the
summary is exactly the single-process one) and merges the workers' files into the output.

Decoding every span in every worker is the price of agreeing: a span that does not validate makes
its line be re-read leniently without it, which changes the span count every shard's window rule
depends on, so each worker must type-check all spans. The other shards' spans are then only counted
(``readers/otlp.py``), for about a third of what building one costs; the decode stays, so a worker
of N costs more than 1/N of one process.

Same output as one process: a trace belongs to one shard only, and every worker counts all spans
read, so its traces are completed by the same rule at the same point of the input
(``readers/assemble.py``). Each trace and each warning is stamped with that point (file, line,
phase, position); the workers produce them in that order and the parent merges the shards by it, so
the traces come out in the single-process order, and the first ``--warnings N`` warnings are the
same ones. Documented differences (docs/analyzer.md, Decisions): the open-span cap is shared out
between the workers, and past 1,000 distinct routes the routes folded into "(other routes)" may differ.

Workers are forked on Linux while the parent runs a single thread (no new interpreter to start and
no imports to repeat: 0.5-0.8 s less per run on the 2-core VMs) and spawned elsewhere (fork copies
only the calling thread, and macOS frameworks do not survive it); they ignore Ctrl-C (the parent
stops them, so nobody prints a traceback) and report library errors as one line.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import resource
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing import get_context
from multiprocessing.connection import Connection, wait
from typing import IO, Any, cast

from tracekit.analyze.api import Selection
from tracekit.analyze.processors.aggregates import Aggregator, merge_aggregators
from tracekit.errors import TraceFormatError, TracekitError

#: Input size from which ``--jobs auto`` goes parallel (starting workers costs about half a second).
DEFAULT_MIN_BYTES = 64 * 1024 * 1024
#: Overrides :data:`DEFAULT_MIN_BYTES` (tests use small files).
MIN_BYTES_ENV = "TRACEKIT_PARALLEL_MIN_BYTES"
#: Most workers ``--jobs auto`` starts: past this, the parent's merge and memory outweigh the gain.
MAX_AUTO_JOBS = 8
#: Most workers ``--jobs N`` may ask for: a typo (``--jobs 100000``) must not start a process per
#: unit and bring the machine down; more workers than this never pays on one host.
MAX_JOBS = 64

#: Sort key of a trace or warning: (file index, line, phase, position, sequence).
_END_PHASE = 5  # input warnings after the last line (the reader's closing count)
_ERROR_PHASE = 6  # a file that held nothing usable


def _key_prefix(order: tuple[int, int, int, int]) -> bytes:
    """A trace's order as fixed-width hex, so that byte order is read order (41 bytes)."""
    f, line, phase, position = order
    return b"%08x%016x%x%016x" % (f, line, phase, position)


_KEY_BYTES = len(_key_prefix((0, 0, 0, 0)))


def min_bytes() -> int:
    value = os.environ.get(MIN_BYTES_ENV)
    try:
        return int(value) if value else DEFAULT_MIN_BYTES
    except ValueError:
        raise TracekitError(f"{MIN_BYTES_ENV}={value!r}: expected a number of bytes") from None


def input_bytes(paths: Sequence[str]) -> int | None:
    """Total size when every path is a regular file (workers must each read it again), else None."""
    total = 0
    for path in paths:
        if path == "-":
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None  # let the single-process path report it as usual
        if not stat.S_ISREG(st.st_mode):
            return None
        total += st.st_size
    return total


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


def choose_jobs(jobs: str, paths: Sequence[str]) -> int:
    """How many worker processes to use: 1 means the single-process path.

    ``jobs`` is ``"auto"`` (parallel for regular files of at least :func:`min_bytes` in all, with
    ``min(usable CPUs, 8)`` workers) or a number (``1`` forces one process; more, up to
    :data:`MAX_JOBS`, is honoured when the inputs are regular files). The caller decides whether
    the output format can use it.
    """
    n = parse_jobs(jobs)
    size = input_bytes(paths) if paths else None
    if size is None or n == 1:
        return 1
    if n:
        return n
    if size < min_bytes():
        return 1
    return max(1, min(usable_cpus(), MAX_AUTO_JOBS))


def usable_cpus() -> int:
    """CPUs this process may run on (``taskset`` and container cpusets included, where known)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# -- the worker side ---------------------------------------------------------------------------


@dataclass
class ShardTask:
    """What one worker needs (plain data: it crosses a process boundary)."""

    paths: list[str]
    index: int
    count: int
    out_path: str
    rules_path: str | None = None
    adjust_skew: bool = True
    trace_ids: list[str] = field(default_factory=list)
    #: Warnings the user will see one by one; a worker keeps only its first ones, and counts the rest.
    warning_limit: int = 10
    #: ``(slowest, failed)``: keep only the candidates for the N slowest and the failed traces shown
    #: (text output, ``--slowest``) and write no trace JSON; ``None``: write every trace's JSON.
    keep: tuple[int, int] | None = None


@dataclass
class ShardResult:
    index: int
    aggregator: Aggregator
    #: The worker's first warnings as (sort key, message), and how many it had in all.
    warnings: list[tuple[tuple[int, ...], str]]
    warning_count: int
    #: Files that held nothing usable (every worker finds the same ones; shard 0's are used).
    errors: list[str]
    traces_written: int
    #: Peak RSS of the worker, in KiB (``ru_maxrss``).
    max_rss_kb: int
    #: A library error that stopped the worker (one line); the command fails with it.
    fatal: str | None = None
    #: With ``ShardTask.keep``: the worker's candidates (hops as dicts), for ``api.choose``.
    selection: Selection | None = None


class _WarningLog:
    """Collects a worker's warnings with their sort keys; keeps only the first ``limit`` of them."""

    def __init__(self, limit: int, shard: Any) -> None:
        self.limit = limit
        self.shard = shard
        self.kept: list[tuple[tuple[int, ...], str]] = []
        self.count = 0
        self.file = 0
        #: The order of the trace being analysed (its warnings sort with it), else None.
        self.trace: tuple[int, ...] | None = None
        self._trace_seq = 0
        self._seq = 0

    def start_trace(self, order: tuple[int, ...] | None) -> None:
        self.trace = order
        self._trace_seq = 0

    def __call__(self, message: str) -> None:
        if self.trace is not None:
            self._trace_seq += 1
            key = (*self.trace, self._trace_seq)
        else:
            # An input warning (from shard 0 only): it comes while this line is read, before the
            # traces completed at the end of the line; after the last line it comes last.
            from tracekit.analyze.readers.common import END_LINE

            self._seq += 1
            line = self.shard.line
            key = (self.file, line, _END_PHASE if line == END_LINE else 0, self._seq, 0)
        self.add(key, message)

    def add(self, key: tuple[int, ...], message: str) -> None:
        self.count += 1
        if not self.limit:
            return
        self.kept.append((key, message))
        if len(self.kept) > 4 * self.limit + 64:
            self.kept = sorted(self.kept)[: self.limit]

    def first(self) -> list[tuple[tuple[int, ...], str]]:
        return sorted(self.kept)[: self.limit]


def run_shard(task: ShardTask) -> ShardResult:
    """Read every input, analyse the traces of shard ``task.index``, write their JSON to ``out_path``.

    Each line of ``out_path`` is a trace's sort key (fixed-width hex) followed by its JSON, in the
    order the traces were completed, which is sort order. With ``task.keep`` nothing is written:
    the worker keeps its slowest and failed candidates, ranked by their place in the input
    (``Trace.order``), so that the parent's :func:`~tracekit.analyze.api.choose` picks what one
    process would have.
    """
    from tracekit.analyze.api import Analysis
    from tracekit.analyze.processors import Options
    from tracekit.analyze.readers import Shard, read_traces
    from tracekit.analyze.renderers.json import encode_trace_into
    from tracekit.analyze.rules import load_rules

    shard = Shard(task.index, task.count)
    log = _WarningLog(task.warning_limit, shard)
    errors: list[str] = []
    written = 0
    fatal = None
    options = Options(rules=load_rules(task.rules_path), adjust_skew=task.adjust_skew)
    keep = task.keep
    slowest, failed = keep if keep is not None else (None, 0)
    analysis = Analysis(
        options, trace_ids=task.trace_ids or None, slowest=slowest, failed=failed, on_warning=log
    )
    with open(task.out_path, "wb") as out:
        buf = bytearray()
        try:
            for f, path in enumerate(task.paths):
                log.file = shard.file = f
                shard.line = 0
                try:
                    for trace in read_traces(path, on_warning=log, shard=shard):
                        order = trace.order
                        assert order is not None  # a shard's reader stamps every trace
                        log.start_trace(order)
                        if keep is not None:
                            analysis.add(trace)
                            log.start_trace(None)
                            continue
                        report = analysis.analyse(trace)
                        log.start_trace(None)
                        if report is None:
                            continue
                        buf += _key_prefix(order)
                        encode_trace_into(report, buf)
                        buf += b"\n"
                        written += 1
                        if len(buf) > 1 << 20:
                            out.write(buf)
                            buf.clear()
                except TraceFormatError as exc:
                    log.start_trace(None)
                    errors.append(str(exc))
                    if task.index == 0 and len(task.paths) > 1:
                        # The single-process command shows it as a warning when other files remain.
                        from tracekit.analyze.readers.common import END_LINE

                        log.add((f, END_LINE, _ERROR_PHASE, 0, 0), str(exc))
        except TracekitError as exc:
            fatal = str(exc)
        out.write(buf)
    return ShardResult(
        index=task.index,
        aggregator=analysis.aggregator,
        warnings=log.first(),
        warning_count=log.count,
        errors=errors,
        traces_written=written,
        max_rss_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        fatal=fatal,
        selection=_portable(analysis.selection()) if keep is not None else None,
    )


def _portable(selection: Selection) -> Selection:
    """The selection with its reports' hops as plain dicts, as :meth:`Analysis.kept` hands them out."""
    from tracekit.analyze.processors.timeline import hops_as_dicts

    for _, _, report in selection.slowest:
        report["hops"] = hops_as_dicts(report["hops"])
    for _, report in selection.failed:
        report["hops"] = hops_as_dicts(report["hops"])
    return selection


def _worker_main(conn: Connection, task: ShardTask) -> None:
    """Process entry point: run the shard, send back the result or a one-line description of a bug."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the workers
    try:
        result: Any = ("ok", run_shard(task))
    except BaseException as exc:
        result = ("error", f"{exc.__class__.__name__}: {exc}")
    try:
        conn.send(result)
    finally:
        conn.close()


# -- the parent side ---------------------------------------------------------------------------


class WorkerCrashed(RuntimeError):
    """A worker died or hit a bug (the command reports it as an internal error)."""


@dataclass
class ParallelResult:
    """The workers' results, merged: what the command needs to finish like a single-process run."""

    aggregator: Aggregator
    #: The first ``warning_limit`` warnings in read order, and how many there were in all.
    warnings: list[str]
    warning_count: int
    errors: list[str]
    shards: list[ShardResult]
    trace_files: list[str]

    @property
    def max_rss_kb(self) -> int:
        return max(s.max_rss_kb for s in self.shards)

    def kept(self, slowest: int, failed: int) -> list[dict[str, Any]]:
        """With ``keep``: the reports one process would have kept (:meth:`Analysis.kept`)."""
        from tracekit.analyze.api import choose

        return choose([s.selection for s in self.shards if s.selection is not None], slowest, failed)


def _context() -> Any:
    """Fork on Linux while no other thread runs (fork copies only the calling thread), else spawn."""
    if sys.platform == "linux" and threading.active_count() == 1:
        return get_context("fork")
    return get_context("spawn")


def run_workers(tasks: list[ShardTask]) -> list[ShardResult]:
    """Run one process per task and return their results in task order.

    Any failure (a worker crashed, Ctrl-C, an error here) terminates every worker still running.
    """
    ctx = _context()
    procs = []
    conns: dict[Connection, int] = {}
    results: dict[int, ShardResult] = {}
    try:
        for i, task in enumerate(tasks):
            receiver, sender = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_worker_main, args=(sender, task), name=f"tracekit-analyze-{i}")
            proc.start()
            sender.close()
            procs.append(proc)
            conns[receiver] = i
        while conns:
            for ready in wait(list(conns)):
                conn = cast(Connection, ready)  # wait() returns the objects it was given
                i = conns.pop(conn)
                try:
                    status, value = conn.recv()
                except EOFError:
                    procs[i].join()
                    raise WorkerCrashed(
                        f"worker {i} stopped without a result (exit code {procs[i].exitcode})"
                    ) from None
                finally:
                    conn.close()
                if status != "ok":
                    raise WorkerCrashed(f"worker {i}: {value}")
                results[i] = value
        for proc in procs:
            proc.join()
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        for proc in procs:
            proc.join()
        for conn in conns:
            conn.close()
    return [results[i] for i in range(len(tasks))]


def analyze_parallel(
    paths: Sequence[str],
    jobs: int,
    work_dir: str,
    *,
    rules_path: str | None = None,
    adjust_skew: bool = True,
    trace_ids: Sequence[str] = (),
    warning_limit: int = 10,
    keep: tuple[int, int] | None = None,
) -> ParallelResult:
    """Analyse ``paths`` with ``jobs`` workers; their trace files are written into ``work_dir``.

    With ``keep=(slowest, failed)`` the workers write no trace files and keep only the candidates
    for :meth:`ParallelResult.kept` (text output, ``--slowest N``).

    :raises TracekitError: a worker met a library error (the message is its one line).
    :raises WorkerCrashed: a worker died or hit a bug.
    """
    tasks = [
        ShardTask(
            paths=list(paths),
            index=i,
            count=jobs,
            out_path=os.path.join(work_dir, f"shard-{i}.jsonl"),
            rules_path=rules_path,
            adjust_skew=adjust_skew,
            trace_ids=list(trace_ids),
            warning_limit=warning_limit,
            keep=keep,
        )
        for i in range(jobs)
    ]
    shards = run_workers(tasks)
    for shard in shards:
        if shard.fatal is not None:
            raise TracekitError(shard.fatal)
    warnings = sorted(w for shard in shards for w in shard.warnings)[:warning_limit]
    return ParallelResult(
        aggregator=merge_aggregators([s.aggregator for s in shards]),
        warnings=[message for _, message in warnings],
        warning_count=sum(s.warning_count for s in shards),
        errors=shards[0].errors,
        shards=shards,
        trace_files=[t.out_path for t in tasks],
    )


def _trace_lines(path: str) -> Generator[bytes]:
    with open(path, "rb") as f:
        yield from f


def write_json(out: IO[bytes], result: ParallelResult) -> int:
    """Write the report exactly as ``renderers.json.stream_json`` would; return the traces written.

    The workers' files are merged by their sort keys (each file is already in order), which puts
    the traces back in the order one process reads them.
    """
    from tracekit.analyze.renderers.json import STREAM_HEAD, STREAM_SEPARATOR, stream_tail

    write = out.write
    write(STREAM_HEAD)
    count = 0
    buf = bytearray()
    files = [_trace_lines(path) for path in result.trace_files]
    try:
        for line in heapq.merge(*files, key=lambda line: line[:_KEY_BYTES]):
            if count:
                buf += STREAM_SEPARATOR
            buf += memoryview(line)[_KEY_BYTES:-1]
            count += 1
            if len(buf) > 1 << 20:
                write(buf)
                buf.clear()
    finally:
        for f in files:
            with contextlib.suppress(Exception):
                f.close()
    write(buf)
    write(stream_tail(result.aggregator.summary()))
    return count


@contextlib.contextmanager
def work_directory(output: str | None) -> Iterator[str]:
    """A temporary directory for the workers' trace files, removed afterwards.

    Next to the output file when there is one: the files hold as much as the report, and the
    system temp directory may be memory (tmpfs).
    """
    where = None
    if output not in (None, "-"):
        where = os.path.dirname(os.path.abspath(output))
    try:
        tmp = tempfile.TemporaryDirectory(prefix=".tracekit-analyze-", dir=where)
    except OSError:
        tmp = tempfile.TemporaryDirectory(prefix="tracekit-analyze-")
    with tmp as path:
        yield path

"""Where a plan's tasks run: in this process, in a local process pool, or on a Dask cluster.

An executor has one method, ``map(fn, tasks)``: run ``fn`` on every task and return the results in
task order. The tasks (``mapreduce.py``) are plain data and plain module-level functions, so the
same plan runs unchanged on all three; only the partition storage must be reachable by every worker
(a local directory for this machine, an object store URL for a cluster).

- :class:`InProcess`: small inputs (no process to start) and ``--jobs 1``.
- :class:`LocalPool`: the default for large inputs, one process per core. Workers are forked on
  Linux while the caller runs a single thread (no interpreter to start, no imports to repeat: about
  0.5 s less per run on the 2-core VMs), spawned elsewhere (fork copies only the calling thread,
  and macOS frameworks do not survive it). Workers ignore Ctrl-C: the caller stops them.
- :class:`DaskExecutor`: ``--scheduler tcp://HOST:PORT`` (or ``DASK_SCHEDULER_ADDRESS``), through
  ``distributed.Client``; the workers need tracekit installed (the ``dask`` extra).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any, Protocol, TypeVar

from tracekit.errors import TracekitError

T = TypeVar("T")
R = TypeVar("R")

#: Environment variable Dask's own tools read for the scheduler address.
SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"


class WorkerCrashed(RuntimeError):
    """A worker process died (the command reports it as an internal error)."""


class Executor(Protocol):
    #: How many tasks can run at once (the plan makes at least this many partitions).
    workers: int

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> list[R]: ...

    def close(self) -> None: ...


class InProcess:
    """Every task in this process, one after the other."""

    workers = 1

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> list[R]:
        return [fn(task) for task in tasks]

    def close(self) -> None:
        pass


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _context() -> Any:
    """Fork on Linux while no other thread runs (fork copies only the calling thread), else spawn."""
    if sys.platform == "linux" and threading.active_count() == 1:
        return get_context("fork")
    return get_context("spawn")


class LocalPool:
    """``workers`` processes on this machine (started on the first ``map``, reused for the next)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> list[R]:
        from concurrent.futures.process import BrokenProcessPool

        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=_context(), initializer=_ignore_sigint)
        try:
            return list(self._pool.map(fn, tasks))
        except BrokenProcessPool as exc:
            self.close(kill=True)
            raise WorkerCrashed(f"a worker process stopped without a result ({exc})") from None
        except BaseException:
            self.close(kill=True)
            raise

    def close(self, kill: bool = False) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if kill:
            # The pool has no public way to stop busy workers; they ignore Ctrl-C, so end them here.
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
        else:
            pool.shutdown(wait=True)


class DaskExecutor:
    """Tasks on a Dask cluster (``distributed``), one Dask task per map or reduce task."""

    def __init__(self, address: str) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise TracekitError(
                "--scheduler needs Dask's distributed scheduler (pip install 'tracekit[dask]')"
            ) from None
        try:
            # Results come back through the scheduler: a client outside the cluster (a port-forward)
            # reaches the scheduler only. The results are small (aggregates and warnings).
            self.client = Client(address, timeout=10, set_as_default=False, direct_to_workers=False)
        except (OSError, TimeoutError) as exc:
            raise TracekitError(f"--scheduler {address}: cannot connect: {exc}") from None
        self.address = address
        info = self.client.scheduler_info()
        self.workers = max(1, sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()))

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> list[R]:
        if not tasks:
            return []
        futures = self.client.map(fn, list(tasks), pure=False)
        try:
            return list(self.client.gather(futures))
        except BaseException:
            self.client.cancel(futures)
            raise

    def close(self) -> None:
        self.client.close()

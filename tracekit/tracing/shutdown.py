"""The way out: flush the spans on SIGTERM/SIGINT and at exit, within one bound, then stop as before.

Kubernetes stops every pod with SIGTERM and kills it after its grace period (30 s by default). A batch
processor holds the last few seconds of spans, so they are lost unless something flushes them on the
way out, and a flush must not hold the pod past its grace period when the collector hangs.

* **One bound.** ``TRACEKIT_SHUTDOWN_TIMEOUT`` (seconds, default 5) is a :class:`Budget` for the whole
  way out: the flush at the signal and the final flush at exit take their time from it, so together
  they never add more than the bound to the stop, however many batches are queued.
* **Chained, never swallowed.** The handler flushes, then does exactly what the process would have done
  without tracekit: it calls the handler that was installed before (gunicorn's graceful stop, werkzeug's
  reloader, ``KeyboardInterrupt`` for SIGINT), ignores the signal if it was ignored, and for the default
  action restores it and raises the signal again, so the process dies of the same signal with the same
  exit status. A handler installed outside Python (uwsgi, an embedding C program) is left alone; the exit
  hook still flushes.
* **Bounded even when stuck.** Every flush runs on a helper thread joined with the remaining budget: a
  signal can arrive while the main thread holds a lock the flush needs, and a collector can hang.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

log = logging.getLogger("tracekit.tracing")

#: Seconds the way out may take when ``TRACEKIT_SHUTDOWN_TIMEOUT`` is not set.
DEFAULT_TIMEOUT = 5.0
#: Seconds of the budget a flush at the signal leaves for the final shutdown (write-off and totals line).
FINAL_RESERVE = 0.25
#: The signals that stop a process: SIGTERM (Kubernetes, systemd, gunicorn) and SIGINT (Ctrl-C).
SIGNALS = (signal.SIGTERM, signal.SIGINT)


def timeout_from_env(environ: Mapping[str, str] | None = None) -> float:
    """``TRACEKIT_SHUTDOWN_TIMEOUT`` in seconds (default 5); a bad value gets one warning and the default."""
    env = os.environ if environ is None else environ
    raw = (env.get("TRACEKIT_SHUTDOWN_TIMEOUT") or "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        log.warning("tracekit: TRACEKIT_SHUTDOWN_TIMEOUT=%r is not a number of seconds; using %g", raw, 5.0)
        return DEFAULT_TIMEOUT
    return value


def signals_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """False when ``TRACEKIT_SHUTDOWN_SIGNALS=off`` (the exit hook still flushes)."""
    env = os.environ if environ is None else environ
    return (env.get("TRACEKIT_SHUTDOWN_SIGNALS") or "on").strip().lower() not in ("off", "false", "0")


class Budget:
    """Seconds left for flushing on the way out, shared by every flush that happens there."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._left = seconds
        self._lock = threading.Lock()

    def left(self) -> float:
        return max(0.0, self._left)

    def spend(self, seconds: float) -> None:
        with self._lock:
            self._left -= max(0.0, seconds)


def bounded(work: Callable[[], Any], budget: Budget, name: str, keep: float = 0.0) -> bool:
    """Run ``work`` on a daemon thread, wait for it at most what ``budget`` has left (minus ``keep``).

    The wait is spent from the budget. Returns True when ``work`` finished in time. A thread still
    running is abandoned: it is a daemon, so it never holds up the exit.
    """
    start = time.monotonic()
    thread = threading.Thread(target=_quiet(work), name=name, daemon=True)
    thread.start()
    thread.join(max(0.0, budget.left() - keep))
    budget.spend(time.monotonic() - start)
    return not thread.is_alive()


def _quiet(work: Callable[[], Any]) -> Callable[[], None]:
    def run() -> None:
        try:
            work()
        except Exception as exc:  # the way out must not fail on a flush
            log.warning("tracekit: flush on the way out failed: %s", exc)

    return run


class ExitHooks:
    """The signal handlers and the exit hook for one tracer set-up.

    :param flush: flushes what is queued (the process goes on: a chained handler may stop it gracefully).
    :param close: the final, bounded shutdown (the process ends).
    """

    def __init__(self, flush: Callable[[], Any], close: Callable[[], Any], budget: Budget) -> None:
        self.flush = flush
        self.close = close
        self.budget = budget
        self.previous: dict[int, Any] = {}
        self.closed = False

    # --- signals ------------------------------------------------------------------------------

    def install(self) -> list[int]:
        """Install the handlers (main thread only, as Python requires); return the signals handled."""
        if threading.current_thread() is not threading.main_thread():
            log.info("tracekit: set up outside the main thread; spans are flushed at exit, not on signals")
            return []
        for sig in SIGNALS:
            previous = signal.getsignal(sig)
            if previous is None:
                continue  # a handler installed outside Python: ours could not chain it
            self.previous[sig] = previous
            signal.signal(sig, self.handle)
        return list(self.previous)

    def uninstall(self) -> None:
        """Put back the handlers we replaced, where ours is still the one installed."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig, previous in self.previous.items():
            if signal.getsignal(sig) == self.handle:
                signal.signal(sig, previous)
        self.previous.clear()

    def handle(self, signum: int, frame: FrameType | None) -> Any:
        previous = self.previous.get(signum, signal.SIG_DFL)
        if previous == signal.SIG_IGN:
            return None
        if previous == signal.SIG_DFL:
            self.finish()  # the default action ends the process here: this is the last chance
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
            return None
        if not self.closed:
            bounded(self.flush, self.budget, "tracekit-flush", keep=FINAL_RESERVE)
        return previous(signum, frame)

    # --- exit ---------------------------------------------------------------------------------

    def finish(self) -> None:
        """The final flush and shutdown, once, within what the budget has left."""
        if self.closed:
            return
        self.closed = True
        bounded(self.close, self.budget, "tracekit-shutdown")

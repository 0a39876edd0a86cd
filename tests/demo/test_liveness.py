"""The owner check the demo's clean-up relies on: running, exited, and killed but not yet reaped;
and the processes of a run that is gone, found by the owner in their environment and stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from demo_app.liveness import OWNER_ENV, orphans, process_alive, stop_orphans


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]


def test_running_zombie_and_gone() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert process_alive(child.pid)
        os.kill(child.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _state(child.pid) != "Z" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _state(child.pid) == "Z"
        assert not process_alive(child.pid)  # killed, not yet reaped: its leftovers are fair game
    finally:
        child.kill()
        child.wait()
    assert not process_alive(child.pid)
    assert process_alive(os.getpid())


def _gone_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


def test_the_processes_of_a_run_that_is_gone_are_stopped() -> None:
    """A run killed with SIGKILL leaves its children running; they carry its pid in their
    environment, and the next run stops exactly those whose run is gone."""
    orphan = subprocess.Popen(["sleep", "60"], env={**os.environ, OWNER_ENV: str(_gone_pid())})
    ours = subprocess.Popen(["sleep", "60"], env={**os.environ, OWNER_ENV: str(os.getpid())})
    unmarked = subprocess.Popen(["sleep", "60"])
    try:
        found = orphans()
        assert orphan.pid in found
        assert ours.pid not in found and unmarked.pid not in found
        assert orphan.pid in stop_orphans()
        assert orphan.wait(timeout=10) == -signal.SIGKILL
        assert ours.poll() is None and unmarked.poll() is None
        assert orphan.pid not in orphans()
    finally:
        for proc in (orphan, ours, unmarked):
            proc.kill()
            proc.wait()

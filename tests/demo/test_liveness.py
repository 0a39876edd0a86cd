"""The owner check the demo's clean-up relies on: running, exited, and killed but not yet reaped."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from demo_app.liveness import process_alive


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

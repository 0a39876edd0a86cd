"""Is a process still running? The demo's clean-up asks it of the run that owns leftovers.

Every process a demo run starts carries :data:`OWNER_ENV` (the run's pid) in its environment. A
run killed with SIGKILL cannot stop its children: the next run finds them by that variable and
stops those whose run is gone (:func:`stop_orphans`), as it removes such a run's namespaces and
pods.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

#: The pid of the demo run that started a process, in that process's environment.
OWNER_ENV = "TRACEKIT_DEMO_OWNER"


def process_alive(pid: int) -> bool:
    """``pid`` runs now. A zombie (killed, not yet reaped by its parent) does not: its namespaces,
    tables and pods are leftovers like those of a run that is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def orphans() -> list[int]:
    """Processes a demo run started whose run is no longer alive (other users' are not readable)."""
    marker = f"{OWNER_ENV}=".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        for item in environ.split(b"\0"):
            if item.startswith(marker):
                owner = item[len(marker) :]
                if owner.isdigit() and not process_alive(int(owner)) and process_alive(int(entry.name)):
                    found.append(int(entry.name))
                break
    return found


def stop_orphans() -> list[int]:
    """SIGKILL every :func:`orphans` process (they hold ports and files of a run that is gone)."""
    pids = orphans()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return pids

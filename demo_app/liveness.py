"""Is a process still running? The demo's clean-up asks it of the run that owns leftovers."""

from __future__ import annotations

from pathlib import Path


def process_alive(pid: int) -> bool:
    """``pid`` runs now. A zombie (killed, not yet reaped by its parent) does not: its namespaces,
    tables and pods are leftovers like those of a run that is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"

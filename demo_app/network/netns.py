"""Named network namespaces through iproute2, and entering one from a thread of this process.

Every namespace the demo creates is named ``tkdemo-<pid>-<role>``: the pid of the ``tracekit demo``
that owns it. That name is the whole bookkeeping: a run cleans up its own namespaces on exit, and the
next run removes those whose owner is gone (a ``kill -9``, a power cut) without touching any other
namespace on the machine.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

from demo_app.liveness import process_alive

PREFIX = "tkdemo-"
NETNS_DIR = Path("/run/netns")
_OWNED = re.compile(rf"^{re.escape(PREFIX)}(\d+)-")
_CLONE_NEWNET = 0x40000000


class NetworkError(RuntimeError):
    """A namespace, link, route or nftables change failed: one line naming the command."""


def ns_name(role: str, owner: int | None = None) -> str:
    return f"{PREFIX}{owner if owner is not None else os.getpid()}-{role}"


def run(args: list[str], *, netns: str | None = None, stdin: str | None = None) -> str:
    """Run an iproute2/nftables command (inside ``netns`` when given); raise NetworkError on failure."""
    cmd = ["ip", "netns", "exec", netns, *args] if netns is not None else args
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise NetworkError(f"{' '.join(cmd)}: {detail[-1] if detail else f'exit {proc.returncode}'}")
    return proc.stdout


def batch(netns: str, commands: list[str]) -> None:
    """Many ``ip`` commands in one process inside ``netns`` (``ip -n NS -batch -``): one fork, not dozens."""
    if commands:
        run(["ip", "-n", netns, "-batch", "-"], stdin="\n".join(commands) + "\n")


def unavailable_reason() -> str | None:
    """Why the network-namespace mode cannot run here (None: it can)."""
    if platform.system() != "Linux":
        return f"network namespaces need Linux (this is {platform.system()})"
    if os.geteuid() != 0:
        return "network namespaces and nftables need root"
    for tool, package in (("ip", "iproute2"), ("nft", "nftables"), ("tc", "iproute2")):
        if shutil.which(tool) is None:
            return f"`{tool}` not found (Debian package {package})"
    return None


def existing() -> list[str]:
    """The demo's namespaces present now (any owner)."""
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(PREFIX))


def kill_processes(name: str) -> None:
    """SIGKILL every process still running inside namespace ``name``."""
    with contextlib.suppress(NetworkError):
        for pid in run(["ip", "netns", "pids", name]).split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)


def delete(name: str) -> None:
    """Delete a namespace (its links, addresses, qdiscs and nftables tables go with it)."""
    kill_processes(name)
    with contextlib.suppress(NetworkError):
        run(["ip", "netns", "delete", name])


def remove_leftovers() -> list[str]:
    """Delete the namespaces of demo runs whose process is gone. Returns their names."""
    removed = []
    for name in existing():
        match = _OWNED.match(name)
        if match is None or process_alive(int(match.group(1))):
            continue
        delete(name)
        removed.append(name)
    return removed


_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise NetworkError(f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def entered(name: str) -> Iterator[None]:
    """Run the body with the calling *thread* inside namespace ``name``.

    A socket belongs to the namespace it was created in, so a listening socket made here serves the
    namespace's addresses for good, from whatever thread accepts on it. setns(2) moves only the
    calling thread; the original namespace is restored on the way out.
    """
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(NETNS_DIR / name, os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(target)
        os.close(own)

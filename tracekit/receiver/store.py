"""The receiver's output: OTLP JSON lines appended whole or not at all.

A request is acknowledged only after its line is in the file, so what the file holds is what was
acknowledged. Writes go straight to the descriptor (``os.write``, no user-space buffer): nothing waits
in a buffer for a flush that could fail at shutdown. When a write fails part-way (disk full, quota),
the file is cut back to the end of its last complete line before the error is reported, so the next
request is never appended to a fragment; if even that fails, every later write tries the cut again
first and is refused until it succeeds. The kernel's page cache holds what was written if the process
dies; like the Collector's file exporter, the store does not fsync each line.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from pathlib import Path
from typing import IO


class StoreError(OSError):
    """The line was not stored (nothing of it remains in the file); the sender should retry."""


class Store:
    """Appends lines to a file (created or truncated), a binary stream, or nowhere (``None``)."""

    def __init__(self, out: str | Path | IO[bytes] | None) -> None:
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._owns = False
        self._stream: IO[bytes] | None = None
        self._end = 0  # the file offset after the last complete line
        self._seekable = False
        self._dirty = False  # a failed write may have left a fragment past _end
        self.closed = False
        self.errors = 0
        self.last_error = ""
        if out is None:
            return
        if isinstance(out, (str, Path)):
            self._fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            self._owns = True
        else:
            self._stream = out
            try:
                out.flush()
                self._fd = out.fileno()
            except (OSError, ValueError, AttributeError):
                self._fd = None  # an in-memory stream: written through its own write()
        if self._fd is not None:
            mode = os.fstat(self._fd).st_mode
            self._seekable = stat.S_ISREG(mode)
            if self._seekable:
                self._end = os.lseek(self._fd, 0, os.SEEK_END)

    @property
    def keeps(self) -> bool:
        """Whether lines are kept at all (False for ``out=None``: counting only)."""
        return self._fd is not None or self._stream is not None

    def append(self, line: bytes) -> None:
        """Write ``line`` (ending in a newline) whole, or raise :class:`StoreError` leaving no trace."""
        with self._lock:
            if self.closed:
                raise StoreError("output is closed")
            if self._fd is None:
                if self._stream is not None:
                    self._stream.write(line)
                return
            if self._dirty:
                self._cut_back()
            view = memoryview(line)
            written = 0
            try:
                while written < len(view):
                    written += os.write(self._fd, view[written:])
            except OSError as exc:
                self.errors += 1
                self.last_error = exc.strerror or str(exc)
                if written:
                    self._dirty = True
                    with contextlib.suppress(StoreError):
                        self._cut_back()
                raise StoreError(exc.errno, f"cannot write the output: {self.last_error}") from None
            self._end += written

    def _cut_back(self) -> None:
        assert self._fd is not None
        if not self._seekable:
            # A pipe or terminal cannot be cut: the fragment is out, and the stream is no longer
            # trustworthy. Refuse from now on so no acknowledged line follows it.
            raise StoreError("the output is a stream holding a partial line: refusing further writes")
        try:
            os.ftruncate(self._fd, self._end)
            os.lseek(self._fd, self._end, os.SEEK_SET)
        except OSError as exc:
            raise StoreError(exc.errno, f"cannot cut the output back: {exc.strerror or exc}") from None
        self._dirty = False

    def close(self) -> str | None:
        """Close (or, for a stream given by the caller, flush). Returns an error text instead of raising:
        shutdown goes on whatever happened."""
        with self._lock:
            if self.closed:
                return None
            self.closed = True
            problem = None
            if self._dirty:
                try:
                    self._cut_back()
                except StoreError as exc:
                    problem = str(exc)
            try:
                if self._owns and self._fd is not None:
                    os.close(self._fd)
                elif self._stream is not None:
                    self._stream.flush()
            except (OSError, ValueError) as exc:
                problem = problem or f"closing the output: {exc}"
            return problem


__all__ = ["Store", "StoreError"]

"""Output files the commands write (``tracekit analyze -o``, ``tracekit demo --report``/``--traces``).

A missing parent directory is created, as ``mkdir -p`` would, before any work starts: finding out at
the end of a long analysis or demo run that ``out/`` does not exist would throw the run away. Where
the directory cannot be created or written to, the command refuses at once with one line.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Iterator
from typing import IO, Any

from tracekit.errors import RendererOptionError


def prepare_output(path: str | os.PathLike[str]) -> None:
    """Create the missing directories above the output file ``path``; check the file can be written.

    :raises RendererOptionError: the directory cannot be created, is not writable, or ``path`` is a
        directory (one line naming the path).
    """
    shown = os.fspath(path)
    if os.path.isdir(shown):
        raise RendererOptionError(f"{shown}: is a directory; give a file name")
    parent = os.path.dirname(os.path.abspath(shown))
    try:
        os.makedirs(parent, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise RendererOptionError(f"{shown}: cannot create its directory: a file is in the way") from None
    except OSError as exc:
        raise RendererOptionError(f"{shown}: cannot create its directory: {exc.strerror or exc}") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise RendererOptionError(f"{shown}: cannot write: directory {parent} is not writable")


def output_format(fmt: str | None, output: str | None) -> str:
    """The format asked for: ``--format``, else the output file's suffix, else text (stdout)."""
    from tracekit.analyze.renderers import format_for_path

    if fmt is not None:
        return fmt
    if output is None or output == "-":
        return "text"
    guessed = format_for_path(output)
    if guessed is None:
        raise RendererOptionError(
            f"{output}: cannot tell the output format from the suffix "
            "(use .json, .html or .txt, or give --format)"
        )
    return guessed


def check_output_not_input(output: str | None, inputs: Iterable[str]) -> None:
    """``-o`` naming an input file would truncate it while it is being read (a JSONL input is
    streamed): the input is lost and the output covers whatever was read before. Refuse it."""
    if output is None or output == "-" or not os.path.exists(output):
        return
    for path in inputs:
        if path == "-":
            continue
        with contextlib.suppress(OSError):
            if os.path.samefile(output, path):
                raise RendererOptionError(f"{output}: the output file is also an input; give another -o FILE")


@contextlib.contextmanager
def open_output(output: str | None, binary: bool = False) -> Iterator[IO[Any]]:
    """The output file (``None`` or ``-``: stdout); a file left half-written by an error is removed."""
    if output is None or output == "-":
        yield sys.stdout.buffer if binary else sys.stdout
        return
    try:
        handle = open(output, "wb" if binary else "w", encoding=None if binary else "utf-8")  # noqa: SIM115
    except OSError as exc:
        raise RendererOptionError(f"{output}: cannot write: {exc.strerror or exc}") from None
    try:
        yield handle
    except BaseException:
        handle.close()
        with contextlib.suppress(OSError):
            os.unlink(output)
        raise
    handle.close()

"""Output files the commands write (``tracekit analyze -o``, ``tracekit demo --report``/``--traces``).

A missing parent directory is created, as ``mkdir -p`` would, before any work starts: finding out at
the end of a long analysis or demo run that ``out/`` does not exist would throw the run away. Where
the directory cannot be created or written to, the command refuses at once with one line.
"""

from __future__ import annotations

import os

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

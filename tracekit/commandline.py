"""What every analysing command (``analyze``, ``diff``) does the same way at the command line.

One error line on stderr, ``tracekit NAME: error: ...``, and exit code 2 for anything the user can
fix (a bad option, an unusable input, an output that cannot be written); 130 on Ctrl-C; a reader that
went away (``| head``) ends the command quietly; an unexpected error is one "internal error" line,
never a traceback (``TRACEKIT_DEBUG=1`` re-raises it, for bug reports).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from typing import IO, Any, NoReturn, TypeVar

import click

from tracekit.errors import TracekitError

T = TypeVar("T")


class _OneLineUsageError(click.UsageError):
    """A bad option value as the command's one error line: Click prints usage errors as three lines
    (usage, a hint, the error), and scripts read every other error of these commands as one."""

    def __init__(self, message: str, ctx: click.Context | None, command: str) -> None:
        super().__init__(message, ctx)
        self.command = command

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"tracekit {self.command}: error: {self.format_message()}", err=True)


class OneLineCommand(click.Command):
    """``click.Command`` whose argument errors are one line on stderr (exit code 2, as Click's)."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            raise _OneLineUsageError(exc.format_message(), exc.ctx, self.name or "") from None


def fail(command: str, message: str) -> NoReturn:
    """The one error line, exit code 2."""
    click.echo(f"tracekit {command}: error: {message}", err=True)
    sys.exit(2)


def run_command(
    command: str,
    work: Callable[[], T],
    *,
    output: str | None,
    on_input_error: Callable[[], None] = lambda: None,
    on_write_error: Callable[[], None] = lambda: None,
) -> T:
    """Run ``work`` and turn whatever it raises into the command's exit (see the module docstring).

    :param output: the output file (``None`` or ``-``: stdout), named when writing it fails.
    :param on_input_error: called before a library error (:mod:`tracekit.errors`) is printed.
    :param on_write_error: called before a failed write (disk full, ...) is printed.
    """
    try:
        return work()
    except TracekitError as exc:
        on_input_error()
        fail(command, str(exc))
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        # The reader went away: silence the interpreter's final flush of stdout.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except OSError as exc:
        on_write_error()
        fail(command, f"{output or 'stdout'}: cannot write: {exc.strerror or exc}")
    except Exception as exc:  # never a traceback for the user (a worker's crash included)
        if os.environ.get("TRACEKIT_DEBUG"):
            raise
        click.echo(
            f"tracekit {command}: internal error (please report): {exc.__class__.__name__}: {exc}", err=True
        )
        sys.exit(1)

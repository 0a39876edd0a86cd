"""Errors the library raises; the CLI turns them into one line on stderr and exit code 2.

Library code raises these specific errors and never prints or exits; only the commands
(``tracekit.cli`` and the ``command`` modules it assembles) translate them. Messages name the file,
the line when known, and the field.
"""

from __future__ import annotations


class TracekitError(Exception):
    """Base class of every error tracekit reports to a user as a one-line message."""


class TraceFormatError(TracekitError):
    """An input file is not valid trace data in the format it claims (or was detected as)."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        where = path or "<input>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line
        #: The message without its place (a reader that goes on shows it as a warning on the file).
        self.detail = message


class UnknownFormatError(TraceFormatError):
    """The content of an input matches none of the trace formats tracekit reads."""


class RendererOptionError(TracekitError):
    """An output option cannot be honoured (unknown format, unwritable file, ...)."""


class RulesError(TracekitError):
    """A user rules file (``--rules``) is invalid."""

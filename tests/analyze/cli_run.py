"""Running ``tracekit analyze`` in-process (click's runner) and checking its one-line errors."""

from __future__ import annotations

from typing import Any

from click.testing import CliRunner, Result

from tracekit.cli import main


def run(*args: str, input: bytes | None = None) -> Result:
    return CliRunner().invoke(main, ["analyze", *args], input=input, catch_exceptions=False)


def one_line_error(result: Any, *needles: str) -> str:
    """Exit 2 and exactly one line on stderr, ``tracekit analyze: error: ...`` holding every needle."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("tracekit analyze: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return str(lines[0])

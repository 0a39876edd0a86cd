"""The CLI's shape: every command exists and documents itself."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from tracekit.cli import main


@pytest.mark.parametrize("command", ["analyze", "collect", "demo", "diff"])
def test_every_command_has_help(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert len(main.commands[command].help or "") > 20, f"{command} lacks a help text"


def test_command_list_shows_whole_descriptions() -> None:
    result = CliRunner().invoke(main, ["--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    listing = " ".join(result.output.partition("Commands:")[2].split())
    assert "..." not in listing
    for name, command in main.commands.items():
        first_paragraph = " ".join((command.help or "").split("\n\n")[0].split())
        assert f"{name} {first_paragraph}" in listing


def test_console_script_runs_as_module() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tracekit", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("tracekit, version ")

"""The ``tracekit`` command line: a thin layer over the library.

Each sub-command lives beside the code it drives (``tracekit/analyze/command.py``, ...); this module
only assembles them and turns library errors into one line on stderr with exit code 2.
"""

from __future__ import annotations

import importlib

import click

from tracekit import __version__

#: Each command's home, imported when the command runs or a help text lists it: ``tracekit collect``,
#: a long-running server, does not carry numpy and scipy (about 80 MiB resident), which only the
#: analyzer and ``diff`` use. (Click's documented pattern for lazily loaded sub-commands.)
_COMMANDS = {
    "analyze": "tracekit.analyze.command:analyze",
    "collect": "tracekit.receiver.command:collect",
    "demo": "demo_app.command:demo",
    "diff": "tracekit.diff.command:diff_command",
}


class _Commands(click.Group):
    """Loads commands on first use (``_COMMANDS``), and lists each with the whole first paragraph of
    its help (Click cuts it to fit one line, ending in "...", which left every description unfinished)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _COMMANDS:
            module, _, attribute = _COMMANDS[cmd_name].partition(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tracekit")
def main() -> None:
    """See what happens to a request inside a Kubernetes cluster, and where its time went."""

"""The ``tracekit`` command line: a thin layer over the library.

Each sub-command lives beside the code it drives (``tracekit/analyze/command.py``, ...); this module
only assembles them and turns library errors into one line on stderr with exit code 2.
"""

from __future__ import annotations

import click

from tracekit import __version__


class _Commands(click.Group):
    """Lists each command with the whole first paragraph of its help (Click cuts it to fit one line,
    ending in "...", which left every command's description unfinished)."""

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


def _register() -> None:
    from demo_app.command import demo
    from tracekit.analyze.command import analyze
    from tracekit.diff.command import diff_command
    from tracekit.receiver.command import collect

    for command in (analyze, collect, demo, diff_command):
        main.add_command(command)


_register()

"""The ``tracekit`` command line: a thin layer over the library.

Each sub-command lives beside the code it drives (``tracekit/analyze/command.py``, ...); this module
only assembles them and turns library errors into one line on stderr with exit code 2.
"""

from __future__ import annotations

import click

from tracekit import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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

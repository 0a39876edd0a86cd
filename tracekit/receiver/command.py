"""The ``tracekit collect``  command (being built: see the open issue)."""

from __future__ import annotations

import click


@click.command("collect")
def collect() -> None:
    """Not built yet."""
    raise click.UsageError("tracekit collect is not built yet")

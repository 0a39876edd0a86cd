"""The ``tracekit analyze``  command (being built: see the open issue)."""

from __future__ import annotations

import click


@click.command("analyze")
def analyze() -> None:
    """Not built yet."""
    raise click.UsageError("tracekit analyze is not built yet")

"""The ``tracekit demo``  command (being built: see the open issue)."""

from __future__ import annotations

import click


@click.command("demo")
def demo() -> None:
    """Not built yet."""
    raise click.UsageError("tracekit demo is not built yet")

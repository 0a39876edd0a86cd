"""The ``tracekit analyze`` command: options in, one error line out; ``run.py`` does the work.

Exit codes: 0 when something was analysed (input problems are warnings on stderr), 2 when nothing
usable was read or an argument is wrong (one line on stderr naming the file and the problem). Library
errors (:mod:`tracekit.errors`) become that line here; no traceback reaches the user
(``TRACEKIT_DEBUG=1`` re-raises unexpected errors, for bug reports).
"""

from __future__ import annotations

from typing import Any

import click

from tracekit.commandline import OneLineCommand, run_command

#: Warnings printed one by one before the rest are only counted.
MAX_WARNINGS_SHOWN = 10


class WarningSink:
    """Print the first warnings to stderr, count the rest, summarise at the end.

    Warnings are held back until something usable has been read (:meth:`release`): when nothing
    was, the command fails with its one error line and the held warnings are dropped, so stderr
    stays one line (the error names the first problem).
    """

    def __init__(self, limit: int = MAX_WARNINGS_SHOWN) -> None:
        self.limit = limit
        self.count = 0
        self.held: list[str] | None = []

    def __call__(self, message: str) -> None:
        self.count += 1
        if self.count <= self.limit:
            if self.held is not None:
                self.held.append(message)
            else:
                click.echo(f"warning: {message}", err=True)

    def release(self) -> None:
        """Input was usable: print what was held and print further warnings at once."""
        held, self.held = self.held, None
        for message in held or ():
            click.echo(f"warning: {message}", err=True)

    def add_counted(self, shown: list[str], total: int) -> None:
        """Warnings gathered elsewhere (partitioned runs): the first ones, and how many in all."""
        for message in shown:
            self(message)
        self.count += total - len(shown)

    def discard(self) -> None:
        self.held = []
        self.count = 0

    def finish(self) -> None:
        self.release()
        hidden = self.count - self.limit
        if hidden > 0:
            click.echo(
                f"warning: ... and {hidden:,} more warning(s) not shown ({self.count:,} in all; "
                "--warnings N shows more, JSON output lists them per trace)",
                err=True,
            )


@click.command("analyze", cls=OneLineCommand)
@click.argument("paths", nargs=-1, metavar="PATH...")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "html", "jaeger"]),
    help="Output format (default: from the -o suffix, else text).",
)
@click.option("-o", "--output", metavar="FILE", help="Write to FILE; .json/.html/.txt pick the format.")
@click.option(
    "--rules", "rules_path", metavar="FILE", help="YAML file of extra layer rules (docs/analyzer.md)."
)
@click.option(
    "--trace-id", "trace_ids", multiple=True, metavar="ID", help="Analyse only this trace (repeatable)."
)
@click.option(
    "--slowest",
    type=click.IntRange(min=1),
    metavar="N",
    help="Report the N slowest traces (text default: 1, plus failed ones); the summary counts all.",
)
@click.option(
    "--jaeger", "jaeger_url", metavar="URL", help="Read traces from a Jaeger query service (API v3)."
)
@click.option("--service", metavar="NAME", help="With --jaeger: the service whose traces to fetch.")
@click.option(
    "--lookback",
    default="1h",
    show_default=True,
    metavar="DURATION",
    help="With --jaeger: how far back (30m, 2d).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    metavar="N",
    help="With --jaeger: how many traces to fetch.",
)
@click.option("--no-skew", is_flag=True, help="Do not adjust clock skew between hosts.")
@click.option(
    "--jobs",
    "-j",
    default="auto",
    show_default=True,
    metavar="N|auto",
    help="Worker processes for text and JSON output (auto: a core each, up to 8, for inputs from 64 MiB).",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="Run on a Dask cluster (tcp://HOST:PORT; default: $DASK_SCHEDULER_ADDRESS).",
)
@click.option(
    "--work-dir",
    metavar="DIR|URL",
    help="Where partitions go (default: a temporary directory; a URL such as s3://bucket/tmp for "
    "workers on other machines).",
)
@click.option(
    "--warnings",
    "max_warnings",
    type=click.IntRange(min=0),
    default=MAX_WARNINGS_SHOWN,
    show_default=True,
    metavar="N",
    help="Warnings printed on stderr before the rest are counted.",
)
def analyze(max_warnings: int, **options: Any) -> None:
    """Where did the time go, and where did it break? Analyse exported traces.

    Reads OTLP JSON (Collector file exporter lines or one document), Jaeger JSON or Zipkin v2 JSON
    (format detected from content; .gz and - for stdin work), or fetches traces from Jaeger with
    --jaeger. Prints, per layer (client, edge, ingress, service, app, sidecar, db, external), how much
    of each request's latency went there, draws the slowest requests' hop-by-hop timeline, and names
    the layer where failed requests broke.

    Exit status: 0 on success (input problems are warnings), 2 when nothing usable was read or an
    argument is wrong.
    """
    sink = WarningSink(max_warnings)

    def work() -> None:
        from tracekit.analyze.run import run

        # The options go to run() by name: its signature is the one typed list of them.
        run(sink=sink, **options)

    run_command(
        "analyze", work, output=options.get("output"), on_input_error=sink.discard, on_write_error=sink.finish
    )
    sink.finish()

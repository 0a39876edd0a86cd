"""The ``tracekit collect`` command: run the OTLP/HTTP receiver until SIGTERM or Ctrl-C."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import click

from tracekit.receiver.forward import traces_url
from tracekit.receiver.server import Limits, Receiver, parse_listen


@click.command("collect")
@click.option(
    "--listen",
    default="127.0.0.1:4318",
    show_default=True,
    metavar="HOST:PORT",
    help="Address to serve OTLP/HTTP on (port 0 picks a free one). Loopback unless told otherwise.",
)
@click.option(
    "--out",
    default="traces.jsonl",
    show_default=True,
    metavar="FILE.jsonl",
    help="Where to write OTLP JSON lines (one ExportTraceServiceRequest per line); '-' for stdout.",
)
@click.option(
    "--forward",
    metavar="URL",
    help="Also send every accepted request (protobuf) to this OTLP/HTTP endpoint, e.g. http://jaeger:4318.",
)
@click.option(
    "--max-body",
    default=Limits.max_body_bytes,
    show_default=True,
    type=click.IntRange(min=1),
    help="Largest request body accepted, in bytes (413 beyond).",
)
@click.option(
    "--max-decompressed",
    default=Limits.max_decompressed_bytes,
    show_default=True,
    type=click.IntRange(min=1),
    help="Largest gzip body accepted once decompressed, in bytes (413 beyond).",
)
def collect(listen: str, out: str, forward: str | None, max_body: int, max_decompressed: int) -> None:
    """Receive OTLP/HTTP traces (POST /v1/traces, protobuf or JSON, gzip) and write OTLP JSON lines.

    The file has the shape the OpenTelemetry Collector's file exporter writes, so `tracekit analyze`
    reads it directly. SIGTERM or Ctrl-C flushes and closes the file.
    """
    try:
        parse_listen(listen)
        if forward:
            traces_url(forward)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    receiver = Receiver(
        listen,
        out,
        forward=forward,
        limits=Limits(max_body_bytes=max_body, max_decompressed_bytes=max_decompressed),
    )
    try:
        receiver.start()
    except OSError as exc:
        raise click.ClickException(f"--listen {listen}: cannot bind: {exc.strerror or exc}") from None
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    click.echo(f"tracekit collect: listening on {receiver.traces_url}, writing {out}", err=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        receiver.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo(
        f"tracekit collect: {receiver.spans} spans in {receiver.requests} requests written to {out}"
        f" ({receiver.refused} refused)",
        err=True,
    )

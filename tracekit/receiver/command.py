"""The ``tracekit collect`` command: run the OTLP receiver until SIGTERM or Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import threading
from types import FrameType

import click

from tracekit.receiver.forward import traces_url
from tracekit.receiver.limits import Limits, tune_allocator
from tracekit.receiver.server import Receiver, is_loopback, parse_listen

_DEFAULTS = Limits()


class _Failure(click.ClickException):
    """An option that cannot be honoured (an address, a file): one line, exit code 2."""

    exit_code = 2


def _raise_descriptor_limit() -> None:
    """Lift the soft descriptor limit to the hard one, as Go programs (the Collector) do at start: the
    connection cap follows the limit, and a soft limit of 1,024 is an accident of history."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@click.command("collect")
@click.option(
    "--listen",
    default="127.0.0.1:4318",
    show_default=True,
    metavar="HOST:PORT",
    help="Address to serve OTLP/HTTP on (port 0 picks a free one). Loopback unless told otherwise.",
)
@click.option(
    "--grpc-listen",
    default="127.0.0.1:4317",
    show_default=True,
    metavar="HOST:PORT|none",
    help="Address to serve OTLP/gRPC on; 'none' for no gRPC.",
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
    default=_DEFAULTS.max_body_bytes,
    show_default=True,
    type=click.IntRange(min=1),
    help="Largest request body accepted, in bytes (413 beyond; the largest gRPC message too).",
)
@click.option(
    "--max-decompressed",
    default=_DEFAULTS.max_decompressed_bytes,
    show_default=True,
    type=click.IntRange(min=1),
    help="Largest gzip body accepted once decompressed, in bytes (413 beyond).",
)
@click.option(
    "--memory-budget",
    default=_DEFAULTS.memory_budget_bytes,
    show_default=True,
    type=click.IntRange(min=1024 * 1024),
    help="Bytes all requests in flight may hold at once; beyond, 503 with Retry-After (gRPC UNAVAILABLE).",
)
@click.option(
    "--max-connections",
    default=_DEFAULTS.max_connections,
    show_default=True,
    type=click.IntRange(min=1),
    help="Open connections per protocol (also kept below the descriptor limit).",
)
@click.option(
    "--idle-timeout",
    default=_DEFAULTS.idle_timeout,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a connection may wait for its next request.",
)
@click.option(
    "--header-timeout",
    default=_DEFAULTS.header_timeout,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds for a request's headers to arrive once it has begun.",
)
@click.option(
    "--body-timeout",
    default=_DEFAULTS.body_timeout,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds for a request's whole body to arrive (408 beyond).",
)
def collect(
    listen: str,
    grpc_listen: str,
    out: str,
    forward: str | None,
    max_body: int,
    max_decompressed: int,
    memory_budget: int,
    max_connections: int,
    idle_timeout: float,
    header_timeout: float,
    body_timeout: float,
) -> None:
    """Receive traces over OTLP/HTTP (POST /v1/traces, protobuf or JSON, gzip) and OTLP/gRPC, and write
    OTLP JSON lines.

    The file has the shape the OpenTelemetry Collector's file exporter writes, so `tracekit analyze`
    reads it directly. SIGTERM or Ctrl-C finishes the requests in progress, closes the file and prints
    a summary line.
    """
    grpc = None if grpc_listen.strip().lower() == "none" else grpc_listen
    try:
        addresses = {"--listen": parse_listen(listen, "--listen")}
        if grpc is not None:
            addresses["--grpc-listen"] = parse_listen(grpc, "--grpc-listen")
        if forward:
            traces_url(forward)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    given = {"--listen": listen, "--grpc-listen": grpc_listen}
    _raise_descriptor_limit()
    tune_allocator()
    limits = Limits(
        max_body_bytes=max_body,
        max_decompressed_bytes=max_decompressed,
        memory_budget_bytes=memory_budget,
        max_connections=max_connections,
        idle_timeout=idle_timeout,
        header_timeout=header_timeout,
        body_timeout=body_timeout,
    )
    receiver = Receiver(listen, out, grpc_listen=grpc, forward=forward, limits=limits)
    try:
        receiver.start()
    except OSError as exc:
        option = str(exc.filename)
        reason = os.strerror(exc.errno) if exc.errno else (exc.strerror or str(exc))
        if option in given:
            raise _Failure(f"{option} {given[option]}: cannot bind: {reason}") from None
        raise _Failure(f"--out {out}: cannot open: {reason}") from None
    for option, (host, _) in addresses.items():
        if not is_loopback(host):
            click.echo(
                f"tracekit collect: warning: {option} {given[option]} accepts connections from other"
                " machines (no TLS, no authentication)",
                err=True,
            )
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    where = f"listening on {receiver.traces_url}"
    if grpc is not None:
        where += f", OTLP/gRPC on {receiver.grpc_endpoint}"
    click.echo(f"tracekit collect: {where}, writing {out}", err=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        receiver.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    summary = (
        f"tracekit collect: {receiver.spans} spans in {receiver.requests} requests written to {out}"
        f" ({receiver.refused} refused, {receiver.write_errors} write errors)"
    )
    click.echo(summary, err=True)
    if receiver.stop_problem:
        click.echo(f"tracekit collect: warning: {receiver.stop_problem}", err=True)

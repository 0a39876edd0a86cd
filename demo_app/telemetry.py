"""Tracing set-up for the demo's processes: ``tracekit.instrument`` / ``tracekit.configure``.

One helper per kind of process, so every demo process is set up the way the README tells users to set
up theirs, plus :func:`flush` for a graceful exit (SIGTERM -> flush -> exit, as a pod's container
should: spans of the last requests must reach the collector before the process is gone).
"""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType
from typing import Any

from opentelemetry import trace
from werkzeug.serving import WSGIRequestHandler

#: Kubelet probes are not user requests: they must not become traces (else "requests sent = traces").
PROBE_PATHS = "healthz,readyz"


def instrument_flask(app: Any, service_name: str) -> None:
    """Instrument a Flask app with tracekit (Flask server spans, requests client spans, OTLP export)."""
    import tracekit

    # The DB sidecar makes its own span per statement (named "<operation> <table>", with the stable
    # conventions): the sqlite3 instrumentation would record each statement a second time.
    tracekit.instrument(app, service_name=service_name, excluded_urls=PROBE_PATHS, instrument_databases=False)


def configure(service_name: str) -> None:
    """Set up tracing for a process that is not a Flask app (the ingress hop, the load generator)."""
    import tracekit

    tracekit.configure(service_name=service_name)


def flush(timeout_ms: int = 10_000) -> None:
    """Export every finished span now (before a graceful exit)."""
    provider = trace.get_tracer_provider()
    force_flush = getattr(provider, "force_flush", None)
    if force_flush is not None:
        force_flush(timeout_ms)


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so ``finally`` blocks flush spans, as on Ctrl-C."""

    def _raise(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _raise)


class NoDelayHandler(WSGIRequestHandler):
    """Werkzeug's handler with TCP_NODELAY: its header and body writes must not wait for a delayed
    ACK (40 ms on Linux), which the traces would show as time in the hop to this server."""

    disable_nagle_algorithm = True


def quiet_werkzeug() -> None:
    """The dev server logs one line per request; the demo shows spans instead."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def serve(app: Any, host: str, port: int, *, service_name: str, banner: str) -> int:
    """Instrument ``app`` and serve it until SIGTERM or Ctrl-C, then flush its spans.

    Both containers of the demo pod run this same loop, so a container stopping (the pod-failure
    scenario, ``kubectl delete pod``) always exports what it recorded before it exits.
    """
    from werkzeug.serving import make_server

    exit_on_sigterm()
    quiet_werkzeug()
    instrument_flask(app, service_name=service_name)
    server = make_server(host, port, app, threaded=True, request_handler=NoDelayHandler)
    print(banner, file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        flush()
    return 0

"""The zero-code path: ``opentelemetry-instrument python app.py`` with tracekit installed.

``opentelemetry-distro`` (the one distro) configures the SDK from ``OTEL_*`` variables, and the resource
gets the pod attributes from our ``tracekit_k8s`` detector when ``OTEL_EXPERIMENTAL_RESOURCE_DETECTORS``
names it. What the distro cannot do is pass hooks to the instrumentations: that is this module's
``post_instrument``, registered under the ``opentelemetry_post_instrument`` entry point, which runs
after every instrumentor was loaded. It re-instruments Flask and requests through their public
``uninstrument()``/``instrument(request_hook=...)`` API with tracekit's hooks, so apps created afterwards
(the app module is imported after this) get the routing attributes and the redaction, and it starts the
routing watch when the pod can reach the Kubernetes API.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tracekit.k8s.watch import RoutingWatch
    from tracekit.tracing.hooks import RoutingSource

log = logging.getLogger("tracekit.tracing")

#: The routing source the zero-code hooks read (set by :func:`post_instrument`).
routing: RoutingWatch | None = None


def post_instrument() -> None:
    """Entry point ``opentelemetry_post_instrument: tracekit``. Never raises."""
    global routing
    try:
        from tracekit.k8s.metadata import pod_context, startup_deadline
        from tracekit.tracing.provider import sdk_disabled
        from tracekit.tracing.redact import protect_header_capture, query_keys_from_env

        if sdk_disabled():
            return
        if "tracekit_k8s" not in (os.environ.get("OTEL_EXPERIMENTAL_RESOURCE_DETECTORS") or ""):
            log.info(
                "tracekit: add tracekit_k8s to OTEL_EXPERIMENTAL_RESOURCE_DETECTORS for k8s.* attributes"
            )
        protect_header_capture()
        keys = query_keys_from_env()
        pod = pod_context()
        deadline = startup_deadline()  # shared with the detector's pod lookup
        if pod.connection is not None and routing is None:
            from tracekit.k8s.watch import RoutingWatch

            routing = RoutingWatch(pod.connection, pod.labels).start()
            routing.wait_settled(max(0.0, deadline - time.monotonic()))
        _reinstrument_flask(routing, keys)
        _reinstrument_requests(keys)
        from tracekit.tracing.databases import upgrade_stock_sqlite3

        upgrade_stock_sqlite3()  # conn.execute(...) gives DB spans too
    except Exception as exc:
        log.warning("tracekit: zero-code set-up incomplete: %s", exc)


def _reinstrument_flask(source: RoutingSource | None, keys: frozenset[str]) -> None:
    try:
        from opentelemetry.instrumentation.flask import FlaskInstrumentor
    except ImportError:
        return
    from tracekit.tracing.hooks import make_server_hooks

    instrumentor = FlaskInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        return  # disabled by OTEL_PYTHON_DISABLED_INSTRUMENTATIONS, or Flask missing: respect it
    req_hook, resp_hook = make_server_hooks(source, keys)
    instrumentor.uninstrument()
    instrumentor.instrument(request_hook=req_hook, response_hook=resp_hook)


def _reinstrument_requests(keys: frozenset[str]) -> None:
    try:
        from opentelemetry.instrumentation.requests import RequestsInstrumentor
    except ImportError:
        return
    from tracekit.tracing.hooks import make_client_request_hook

    instrumentor = RequestsInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        return
    instrumentor.uninstrument()
    instrumentor.instrument(request_hook=make_client_request_hook(keys))

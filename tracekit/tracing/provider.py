"""One-line tracing for a Flask app (``tracekit.instrument(app)``) or any process (``tracekit.configure()``).

What it sets up, once per process (calling again is a no-op that returns the same set-up):

* a ``TracerProvider`` whose resource carries the pod's ``k8s.*`` attributes (Downward API variables plus
  one bounded API lookup, see ``tracekit.k8s.metadata``), unless the app already configured a provider
  (or passes one), which is then used as is;
* a :class:`~tracekit.tracing.processor.BoundedBatchSpanProcessor` (bounded queue, exact counts, redaction
  at export) with the OTLP exporter the standard ``OTEL_*`` variables describe (``http/protobuf`` by
  default; ``grpc`` when the optional ``opentelemetry-exporter-otlp-proto-grpc`` package is installed),
  whose export timeout never exceeds the shutdown bound;
* for a provider tracekit created: the way out (``tracekit.tracing.shutdown``): a bounded flush on
  SIGTERM/SIGINT that chains the previous handler, and a bounded final flush at exit;
* W3C ``traceparent`` + ``baggage`` propagation (unless ``OTEL_PROPAGATORS`` says otherwise);
* the OpenTelemetry requests instrumentation for outgoing calls, the database instrumentations for the
  installed clients (``tracekit.tracing.databases``) and, for ``instrument(app)``, the Flask
  instrumentation on that app with tracekit's hooks (routing attributes, secret redaction);
* for ``instrument(app)`` in a cluster: the background routing watch (``tracekit.k8s.watch``).

``OTEL_SDK_DISABLED=true`` turns all of it off. Nothing here can break the app: Kubernetes problems are
logged once and tracing continues without the missing attributes.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter

from tracekit import attributes as a
from tracekit.k8s.metadata import PodContext, pod_context, startup_deadline
from tracekit.k8s.routing import RoutingTable
from tracekit.tracing import hooks
from tracekit.tracing import shutdown as way_out
from tracekit.tracing.processor import BoundedBatchSpanProcessor, ExportCounts
from tracekit.tracing.redact import (
    protect_header_capture,
    query_keys_from_env,
    secret_headers,
    span_redactor,
)

log = logging.getLogger("tracekit.tracing")


@dataclass
class Runtime:
    """What :func:`configure` set up; :func:`current` returns it (tests, diagnostics)."""

    provider: Any  # the TracerProvider spans go to
    owns_provider: bool
    processor: BoundedBatchSpanProcessor | SpanProcessor | None
    pod: PodContext
    query_keys: frozenset[str]
    requests_instrumented: bool
    routing: Any = None  # RoutingWatch | StaticRouting | None, started by instrument()
    exit_hooks: way_out.ExitHooks | None = None
    #: Database client libraries instrumented by :func:`configure` (names as in OTEL_PYTHON_DISABLED_...).
    databases: tuple[str, ...] = ()
    #: When the start-up waits (pod lookup, first routing lists) must be over (time.monotonic()).
    startup_deadline: float = 0.0

    def export_counts(self) -> ExportCounts | None:
        """Exported/failed/dropped/pending span counts of tracekit's processor (None with another one)."""
        if isinstance(self.processor, BoundedBatchSpanProcessor):
            return self.processor.counts()
        return None

    @property
    def dropped_spans(self) -> int:
        """Spans never sent: export queue full (collector slow or down), or cut off at shutdown."""
        counts = self.export_counts()
        return counts.dropped if counts is not None else 0


_runtime: Runtime | None = None
_lock = threading.RLock()
#: Providers tracekit created: an app's own provider is respected, ours are not mistaken for one.
_ours: weakref.WeakSet[Any] = weakref.WeakSet()


def sdk_disabled(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return (env.get("OTEL_SDK_DISABLED") or "").strip().lower() == "true"


def current() -> Runtime | None:
    """The running set-up, or None before :func:`configure` (or when the SDK is disabled)."""
    return _runtime


# --- set-up pieces ---------------------------------------------------------------------------


def _service_name_from_env(env: Mapping[str, str]) -> str | None:
    if env.get("OTEL_SERVICE_NAME"):
        return env["OTEL_SERVICE_NAME"]
    for item in (env.get("OTEL_RESOURCE_ATTRIBUTES") or "").split(","):
        key, _, value = item.partition("=")
        if key.strip() == SERVICE_NAME and value.strip():
            return value.strip()
    return None


def build_resource(service_name: str | None, pod: PodContext) -> Resource:
    """The process resource: pod attributes, overridden by ``OTEL_RESOURCE_ATTRIBUTES``/``OTEL_SERVICE_NAME``.

    ``service_name`` is the code's default: the environment (the Deployment) wins over it, so operators
    can rename a service without a rebuild. Without either, the Deployment name is a better default than
    OpenTelemetry's ``unknown_service``.
    """
    from_env = Resource.create({})  # SDK defaults, configured detectors, OTEL_RESOURCE_ATTRIBUTES
    resource = Resource(dict(pod.attributes)).merge(from_env)
    if not _service_name_from_env(os.environ):
        name = service_name or pod.attributes.get(a.K8S_DEPLOYMENT_NAME)
        if name:
            resource = resource.merge(Resource({SERVICE_NAME: name}))
    return resource


def export_timeout(bound: float, environ: Mapping[str, str] | None = None) -> float:
    """Seconds one export may take: the OTLP timeout variables (default 10), never more than ``bound``.

    A collector that accepts and never answers then costs at most the shutdown bound per export, so the
    bound holds on the way out however many batches are queued.
    """
    env = os.environ if environ is None else environ
    raw = env.get("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") or env.get("OTEL_EXPORTER_OTLP_TIMEOUT") or ""
    try:
        configured = float(raw) if raw.strip() else 10.0
    except ValueError:
        configured = 10.0
    return max(0.001, min(configured if configured > 0 else 10.0, bound if bound > 0 else configured))


def make_exporter(
    environ: Mapping[str, str] | None = None, *, timeout: float | None = None
) -> SpanExporter | None:
    """The span exporter the standard variables ask for (``OTEL_TRACES_EXPORTER``, ``..._PROTOCOL``)."""
    env = os.environ if environ is None else environ
    kind = (env.get("OTEL_TRACES_EXPORTER") or "otlp").split(",")[0].strip().lower()
    if kind == "none":
        return None
    if kind == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if kind != "otlp":
        log.warning("tracekit: OTEL_TRACES_EXPORTER=%s is not supported here; using otlp", kind)
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc
        except ImportError:
            log.warning(
                "tracekit: OTLP protocol grpc needs `pip install 'tracekit[grpc]'`; using http/protobuf"
            )
        else:
            return Grpc(timeout=timeout)
    elif protocol != "http/protobuf":
        log.warning("tracekit: OTLP protocol %r is not supported; using http/protobuf", protocol)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(timeout=timeout)


def _set_propagators() -> None:
    if os.environ.get("OTEL_PROPAGATORS"):
        return  # the SDK already built what the user asked for
    from opentelemetry.baggage.propagation import W3CBaggagePropagator
    from opentelemetry.propagate import set_global_textmap
    from opentelemetry.propagators.composite import CompositePropagator
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    set_global_textmap(CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()]))


def _instrument_requests(provider: Any, query_keys: frozenset[str]) -> bool:
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    instrumentor = RequestsInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        return False  # someone (opentelemetry-instrument, the app) already did; keep theirs
    instrumentor.instrument(tracer_provider=provider, request_hook=hooks.make_client_request_hook(query_keys))
    return True


# --- public API ------------------------------------------------------------------------------


def configure(
    *,
    service_name: str | None = None,
    tracer_provider: Any = None,
    span_processor: SpanProcessor | None = None,
    k8s: str | None = None,
    instrument_requests: bool = True,
    instrument_databases: bool = True,
) -> Runtime | None:
    """Set up tracing for this process (idempotent); return the :class:`Runtime`, or None if disabled.

    :param service_name: default ``service.name`` (``OTEL_SERVICE_NAME`` wins over it).
    :param tracer_provider: use this provider instead of creating one (no exporter is added to it).
    :param span_processor: use this processor instead of the batch OTLP exporter (tests, benchmarks).
    :param k8s: override ``TRACEKIT_K8S`` (``auto`` | ``kubeconfig`` | ``off``).
    :param instrument_requests: instrument outgoing ``requests`` calls.
    :param instrument_databases: instrument the installed database clients (see ``databases.py``).
    """
    global _runtime
    with _lock:
        if _runtime is not None:
            return _runtime
        if sdk_disabled():
            log.info("tracekit: OTEL_SDK_DISABLED=true, tracing is off")
            return None
        protect_header_capture()
        query_keys = query_keys_from_env()
        pod = pod_context(mode=k8s)
        deadline = startup_deadline()  # fixed by the pod lookup's wait when there was one
        processor: Any = None
        exit_hooks = None
        existing = trace.get_tracer_provider()
        if tracer_provider is not None:
            provider, owns = tracer_provider, False
        elif isinstance(existing, TracerProvider) and existing not in _ours:
            log.info("tracekit: using the TracerProvider the application already configured")
            provider, owns = existing, False
        else:
            # No SDK exit hook: tracekit's own is bounded (the SDK's waits 30 s and more per processor).
            provider = TracerProvider(resource=build_resource(service_name, pod), shutdown_on_exit=False)
            owns = True
            _ours.add(provider)
            budget = way_out.Budget(way_out.timeout_from_env())
            if span_processor is None:
                exporter = make_exporter(timeout=export_timeout(budget.seconds))
                if exporter is not None:
                    span_processor = BoundedBatchSpanProcessor(
                        exporter, budget=budget, prepare=span_redactor(query_keys, secret_headers())
                    )
            if span_processor is not None:
                provider.add_span_processor(span_processor)
            processor = span_processor
            if not isinstance(existing, TracerProvider):
                trace.set_tracer_provider(provider)  # the global can be set once per process
            exit_hooks = _exit_hooks(provider, budget)
        if not owns and span_processor is not None:
            provider.add_span_processor(span_processor)
            processor = span_processor
        _set_propagators()
        requests_done = _instrument_requests(provider, query_keys) if instrument_requests else False
        dbs = _instrument_databases(provider) if instrument_databases else ()
        _runtime = Runtime(
            provider, owns, processor, pod, query_keys, requests_done, None, exit_hooks, dbs, deadline
        )
        return _runtime


def _instrument_databases(provider: Any) -> tuple[str, ...]:
    from tracekit.tracing import databases  # imports wrapt and the DB-API layer: only when wanted

    return databases.instrument(provider)


def _exit_hooks(provider: Any, budget: way_out.Budget) -> way_out.ExitHooks:
    """Flush on SIGTERM/SIGINT (unless TRACEKIT_SHUTDOWN_SIGNALS=off) and at exit, within ``budget``."""
    hooks_ = way_out.ExitHooks(
        flush=lambda: provider.force_flush(int(max(0.0, budget.left() - way_out.FINAL_RESERVE) * 1000)),
        close=provider.shutdown,
        budget=budget,
    )
    if way_out.signals_enabled():
        hooks_.install()
    atexit.register(hooks_.finish)
    return hooks_


def start_routing(rt: Runtime, *, watch_timeout: int = 300) -> Any:
    """Start the routing watch for ``rt`` once (no-op without an API connection); return the source."""
    if rt.routing is None and rt.pod.connection is not None:
        from tracekit.k8s.watch import RoutingWatch

        rt.routing = RoutingWatch(rt.pod.connection, rt.pod.labels, watch_timeout=watch_timeout).start()
        # Bounded wait so the first requests already carry routing attributes: what is left of the
        # start-up budget (TRACEKIT_K8S_TIMEOUT covers the pod lookup and this wait together).
        rt.routing.wait_settled(max(0.0, rt.startup_deadline - time.monotonic()))
    return rt.routing


def instrument(
    app: Any,
    *,
    service_name: str | None = None,
    tracer_provider: Any = None,
    span_processor: SpanProcessor | None = None,
    k8s: str | None = None,
    routing: bool | RoutingTable = True,
    excluded_urls: str | None = None,
    request_hook: Callable[..., Any] | None = None,
    response_hook: Callable[..., Any] | None = None,
    watch_timeout: int = 300,
    instrument_requests: bool = True,
    instrument_databases: bool = True,
) -> Any:
    """Trace a Flask ``app`` with pod and routing context; returns the app. Safe to call twice.

    Takes the parameters of :func:`configure`, plus:

    :param routing: True (default) to watch the cluster's Ingresses/HTTPRoutes/Services, False to add
        no routing attributes, or a fixed :class:`~tracekit.k8s.routing.RoutingTable`.
    :param excluded_urls: comma-separated regexes of URLs not to trace (default:
        ``OTEL_PYTHON_FLASK_EXCLUDED_URLS``), e.g. ``"healthz,readyz"``.
    :param request_hook: / :param response_hook: your own Flask hooks, called after tracekit's.
    """
    rt = configure(
        service_name=service_name,
        tracer_provider=tracer_provider,
        span_processor=span_processor,
        k8s=k8s,
        instrument_requests=instrument_requests,
        instrument_databases=instrument_databases,
    )
    if rt is None:
        return app
    with _lock:
        if app.extensions.get("tracekit") is not None:
            return app
        if isinstance(routing, RoutingTable):
            source: Any = hooks.StaticRouting(routing)
        elif routing:
            source = start_routing(rt, watch_timeout=watch_timeout)
        else:
            source = None
        from opentelemetry.instrumentation.flask import FlaskInstrumentor

        if getattr(app, "_is_instrumented_by_opentelemetry", False):
            # opentelemetry-instrument got there first; its hooks come from tracekit's post-instrument.
            log.info("tracekit: %s is already instrumented (opentelemetry-instrument?)", app.name)
        else:
            req_hook, resp_hook = hooks.make_server_hooks(
                source, rt.query_keys, then_request=request_hook, then_response=response_hook
            )
            FlaskInstrumentor().instrument_app(
                app,
                request_hook=req_hook,
                response_hook=resp_hook,
                tracer_provider=rt.provider,
                excluded_urls=excluded_urls,
            )
        app.extensions["tracekit"] = rt
        return app


def shutdown() -> None:
    """Undo :func:`configure`: stop the watch, flush and shut down our provider (bounded), forget the set-up.

    Flask apps and database clients stay instrumented. Meant for tests and for processes that re-configure.
    """
    global _runtime
    with _lock:
        rt, _runtime = _runtime, None
    if rt is None:
        return
    if rt.routing is not None and hasattr(rt.routing, "stop"):
        rt.routing.stop()
    if rt.requests_instrumented:
        from opentelemetry.instrumentation.requests import RequestsInstrumentor

        RequestsInstrumentor().uninstrument()
    if rt.databases:
        from tracekit.tracing import databases

        databases.uninstrument(rt.databases)
    if rt.exit_hooks is not None:
        rt.exit_hooks.uninstall()
        atexit.unregister(rt.exit_hooks.finish)
        rt.exit_hooks.finish()
    elif rt.owns_provider:
        rt.provider.shutdown()

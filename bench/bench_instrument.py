"""Overhead of ``tracekit.instrument`` on a Flask endpoint, next to bare Flask and plain OpenTelemetry.

Three apps, one process, the werkzeug test client (no sockets in the timed loop):

* bare Flask;
* Flask + ``FlaskInstrumentor().instrument_app`` (plain OpenTelemetry);
* Flask + ``tracekit.instrument`` with a routing table of 200 Ingress rules, loaded from a local fake
  Kubernetes API through the real client and background watch.

Both instrumented apps share one TracerProvider with a SimpleSpanProcessor into an InMemorySpanExporter.
Time is this thread's CPU time (``time.thread_time``), not wall time: the machine is shared, and CPU
time does not count the time other processes hold the cores. Short batches alternate between the apps;
we report medians and the median of the per-batch ratios (each ratio compares neighbours in time).
The API server counts requests that arrive during the timed loops: the goal is 0 (a request never
talks to the API). Goal for the ratio tracekit / plain OpenTelemetry: <= 1.05.
"""

from __future__ import annotations

import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

REQUESTS_PER_BATCH = 250
BATCHES = 40
RULES = 200


def _app(name: str):
    import flask

    app = flask.Flask(name)

    @app.get("/api/items/<int:n>")
    def item(n: int):
        return {"id": n}

    return app


def _ingresses() -> list[dict]:
    from tests.k8s.fakeapi import ingress, rule

    out = []
    # 199 rules on other hosts/paths, plus the one that routes the benchmark's requests.
    for i in range(RULES - 1):
        out.append(ingress(f"ing-{i:03d}", [rule(f"h{i}.example.com", (f"/p{i}", "Prefix", f"svc-{i}"))]))
    out.append(ingress("shop", [rule("shop.example.com", ("/api", "Prefix", "web-service"))]))
    return out


def _batch(client, n: int, headers: dict[str, str]) -> float:
    """CPU µs per request for ``n`` requests."""
    paths = [f"/api/items/{i % 8}" for i in range(n)]
    start = time.thread_time()
    for p in paths:
        client.get(p, headers=headers)
    return (time.thread_time() - start) / n * 1e6


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from werkzeug.test import Client

    import tracekit
    from tests.k8s.conftest import seed
    from tests.k8s.fakeapi import FakeKubeApi
    from tracekit import attributes as a
    from tracekit.k8s import metadata
    from tracekit.tracing import provider

    api = FakeKubeApi(watch_cap=600).start()
    seed(api)
    for ing in _ingresses():
        api.put("ingresses", ing)
    kubeconfig = api.write_kubeconfig(Path(tempfile.mkdtemp()) / "kubeconfig")
    os.environ.update(
        {
            "KUBECONFIG": str(kubeconfig),
            "TRACEKIT_K8S": "kubeconfig",
            "POD_NAME": "shop-1",
            "POD_NAMESPACE": "shop",
        }
    )
    metadata.clear_cache()

    exporter = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    bare = _app("bare")
    plain = _app("plain")
    FlaskInstrumentor().instrument_app(plain, tracer_provider=tp)
    traced = tracekit.instrument(_app("tracekit"), tracer_provider=tp, instrument_requests=False)
    watch = provider.current().routing
    loaded = watch.wait_for(lambda t: len(t.ingresses._exact) >= RULES, 30)
    print(f"routing table: {RULES} Ingress rules loaded through the watch: {loaded}")

    headers = {"Host": "shop.example.com"}
    clients = {"bare": Client(bare), "plain": Client(plain), "tracekit": Client(traced)}
    for c in clients.values():  # warm-up (imports, caches, first-request work)
        _batch(c, 200, headers)
    sample = exporter.get_finished_spans()[-1]
    assert sample.attributes[a.INGRESS_NAME] == "shop", dict(sample.attributes)
    attrs_sample = watch.table.attributes("shop.example.com", "/api/items/1")

    results: dict[str, list[float]] = {name: [] for name in clients}
    api_before = len(api.requests)
    loop_start = time.monotonic()
    for _ in range(BATCHES):
        for name, c in clients.items():
            exporter.clear()
            results[name].append(_batch(c, REQUESTS_PER_BATCH, headers))
    loop_end = time.monotonic()
    during = [r for r in api.requests[api_before:] if loop_start <= r[0] <= loop_end]

    median = {name: statistics.median(v) for name, v in results.items()}
    ratios = [t / p for t, p in zip(results["tracekit"], results["plain"], strict=True)]
    n = BATCHES * REQUESTS_PER_BATCH
    for name in clients:
        print(
            f"{name:>9}: {median[name]:7.1f} µs/request (median CPU time of {BATCHES} batches, {n} requests)"
        )
    print(
        f"ratio tracekit / plain OpenTelemetry: {statistics.median(ratios):.3f} (median of per-batch ratios; "
        f"of medians {median['tracekit'] / median['plain']:.3f}; goal <= 1.05)"
    )
    print(f"ratio plain OpenTelemetry / bare Flask: {median['plain'] / median['bare']:.2f}")
    print(f"Kubernetes API requests during the timed requests: {len(during)} (goal 0)")

    # The per-request lookup itself: a cache miss compiles nothing, it scans the pre-sorted table.
    table = watch.table
    misses = [(f"h{i}.example.com", f"/p{i}/x") for i in range(RULES - 1)]
    start = time.thread_time()
    for host, path in misses:
        table._compute(host, path)
    miss_us = (time.thread_time() - start) / len(misses) * 1e6
    start = time.thread_time()
    for _ in range(20000):
        table.attributes("shop.example.com", "/api/items/1")
    hit_us = (time.thread_time() - start) / 20000 * 1e6
    print(f"routing lookup: uncached {miss_us:.1f} µs, cached {hit_us:.2f} µs")

    # What tracekit adds per request, isolated: its request hook on a live span (attribute writes
    # included) and its response hook (a no-op unless the query string holds a secret).
    from tracekit.tracing.hooks import make_server_hooks

    req_hook, resp_hook = make_server_hooks(watch, frozenset({"token"}))
    environ = {
        "HTTP_HOST": "shop.example.com",
        "PATH_INFO": "/api/items/1",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
    }
    tracer = tp.get_tracer("bench")
    spans = [tracer.start_span("s") for _ in range(5000)]
    start = time.thread_time()
    for span in spans:
        req_hook(span, environ)
        resp_hook(span, "200 OK", [])
    hook_us = (time.thread_time() - start) / len(spans) * 1e6
    print(f"tracekit hooks alone: {hook_us:.1f} µs/request ({len(attrs_sample)} routing attributes written)")

    provider.shutdown()
    api.stop()


if __name__ == "__main__":
    main()

"""A struggling API server is not hammered: backoff on unproductive cycles, a rate cap, a bounded start-up.

The API server is the real-protocol fake on loopback; what the tests check is what it saw (its own
request timestamps), so the checks are lower bounds on time between requests: a loaded machine can
only make them larger.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import flask
import pytest

import tracekit
from tests.k8s import fakeapi
from tests.k8s.conftest import seed
from tracekit.k8s import api_calls, client, metadata
from tracekit.k8s.watch import RoutingWatch
from tracekit.tracing import provider

WAIT = 30.0
INGRESSES = (api_calls.INGRESSES,)


def _connect(api: fakeapi.FakeKubeApi, tmp_path: Path) -> client.Connection:
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    conn = client.connect("kubeconfig", {"KUBECONFIG": str(kubeconfig), "POD_NAMESPACE": "shop"})
    assert conn is not None
    return conn


def _times(api: fakeapi.FakeKubeApi, resource: str) -> list[float]:
    return [t for t, _, path, _ in list(api.requests) if path.endswith("/" + resource)]


def test_watches_ended_at_once_back_off_to_the_maximum(tmp_path: Path) -> None:
    """Every watch ends at once with an empty 200 (watch_cap=0): the delay grows to its maximum."""
    with fakeapi.FakeKubeApi(watch_cap=0) as api:
        watch = RoutingWatch(_connect(api, tmp_path), None, watch_timeout=60, backoff=(0.05, 0.4),
                             max_rate=100, burst=100, resources=INGRESSES).start()  # fmt: skip
        try:
            assert api.wait_until(lambda: api.count("ingresses", watch=True) >= 9, WAIT)
            assert watch.delays["ingresses"] == 0.4
            assert watch.stats["unproductive"] >= 8 and watch.stats["resets"] == 0
        finally:
            watch.stop()
        times = _times(api, "ingresses")
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # After 0.05, 0.1, 0.2, 0.4: each wait is at least the delay less its 20 % jitter.
    assert all(g >= 0.4 * 0.8 for g in gaps[5:]), gaps
    assert watch.stats["lists"] == 1  # an empty watch is resumed, not re-listed


def test_a_watch_with_events_resets_the_backoff(tmp_path: Path) -> None:
    with fakeapi.FakeKubeApi(watch_cap=0) as api:
        watch = RoutingWatch(_connect(api, tmp_path), None, watch_timeout=60, backoff=(0.05, 0.2),
                             max_rate=100, burst=100, resources=INGRESSES).start()  # fmt: skip
        try:
            assert api.wait_until(lambda: watch.delays["ingresses"] == 0.2, WAIT)
            api.put(
                "ingresses", fakeapi.ingress("new", [fakeapi.rule("new.example.com", ("/", "Prefix", "s"))])
            )
            assert watch.wait_for(lambda t: t.attributes("new.example.com", "/").get("tracekit.ingress.name")
                                  == "new", WAIT)  # fmt: skip
            assert api.wait_until(lambda: watch.stats["resets"] >= 1, WAIT)
        finally:
            watch.stop()


def test_a_successful_list_does_not_reset_the_backoff(tmp_path: Path) -> None:
    """Lists succeed, every watch fails: the delay still grows (it used to restart at each list)."""
    with fakeapi.FakeKubeApi() as api:
        api.fail_watches["ingresses"] = 500
        watch = RoutingWatch(_connect(api, tmp_path), None, watch_timeout=60, backoff=(0.05, 0.4),
                             max_rate=100, burst=100, resources=INGRESSES).start()  # fmt: skip
        try:
            assert api.wait_until(lambda: watch.delays["ingresses"] == 0.4, WAIT)
            assert watch.stats["lists"] >= 4 and watch.stats["errors"] >= 4
        finally:
            watch.stop()


def test_requests_per_resource_are_capped_whatever_the_backoff(tmp_path: Path) -> None:
    with fakeapi.FakeKubeApi(watch_cap=0) as api:
        rate, burst = 4.0, 2
        watch = RoutingWatch(_connect(api, tmp_path), None, watch_timeout=60, backoff=(0.001, 0.001),
                             max_rate=rate, burst=burst, resources=INGRESSES).start()  # fmt: skip
        try:
            assert api.wait_until(lambda: len(_times(api, "ingresses")) >= 12, WAIT)
        finally:
            watch.stop()
        times = _times(api, "ingresses")
    # The k-th request cannot come before the bucket refilled (k + 1 - burst) tokens (less 50 ms: the
    # server stamps arrival, after a network hop whose time varies).
    early = [
        (k, round(t - times[0], 3))
        for k, t in enumerate(times)
        if t - times[0] < (k + 1 - burst) / rate - 0.05
    ]
    assert not early, early


@pytest.mark.slow
def test_an_api_server_that_never_answers_delays_start_up_by_at_most_the_timeout(
    blackhole, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, connected = blackhole
    api = fakeapi.FakeKubeApi()
    api.server.port = int(endpoint.rsplit(":", 1)[1])  # never started: the kubeconfig names the silent port
    monkeypatch.setenv("KUBECONFIG", str(api.write_kubeconfig(tmp_path / "kubeconfig")))
    monkeypatch.setenv("TRACEKIT_K8S", "kubeconfig")
    monkeypatch.setenv("TRACEKIT_K8S_TIMEOUT", "3")
    monkeypatch.setenv("POD_NAME", "shop-1")
    monkeypatch.setenv("POD_NAMESPACE", "shop")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    metadata.clear_cache()
    import kubernetes.client  # noqa: F401  (loaded before the clock starts: CPU, not a wait on the API)
    import opentelemetry.instrumentation.flask  # noqa: F401

    start = time.monotonic()
    try:
        tracekit.instrument(flask.Flask("startup"))
        took = time.monotonic() - start
    finally:
        provider.shutdown()
    assert connected.is_set()  # it did try the API
    # 3 s of waiting in total; it used to be the pod lookup's 3 s plus up to 3 s per watched resource.
    assert took < 3 + 2.5, took
    metadata.clear_cache()


def test_seeded_watch_still_settles_quickly(kube: fakeapi.FakeKubeApi) -> None:
    seed(kube)
    ctx = metadata.pod_context()
    watch = RoutingWatch(ctx.connection, ctx.labels, watch_timeout=3).start()
    try:
        assert watch.wait_settled(WAIT)
        assert watch.table.attributes("shop.example.com", "/")["tracekit.ingress.name"] == "shop"
    finally:
        watch.stop()

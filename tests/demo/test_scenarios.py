"""Ground truth: each scenario's injected fault is what the analyzer finds, and nothing is lost.

Every test runs the real demo: receiver, pod processes (Flask app + SQLite sidecar), the ingress hop
and the load generator, all on loopback; then tracekit's analyzer reads the collected file. Request
counts are small to keep the suite fast; the assertions hold for any count.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from demo_app import scenarios
from demo_app.launcher import Demo, DemoError, DemoOptions
from tests.demo.conftest import Outcome, assert_nothing_lost, run_scenario

pytestmark = pytest.mark.slow  # every test runs a demo scenario: processes, loopback HTTP, SQLite


def services_of(trace: dict) -> set[str]:
    return {span["service"] for span in trace["spans"]}


def test_baseline_every_request_crosses_every_hop_and_nothing_is_lost(baseline: Outcome) -> None:
    assert_nothing_lost(baseline)
    assert baseline.report["summary"]["error_traces"] == 0
    assert all(200 <= r["status"] < 300 for r in baseline.run.results)
    for trace in baseline.report["traces"]:
        assert services_of(trace) == {"loadgen", "ingress", "shop", "shop-db"}
        assert {"edge", "ingress", "service", "app", "sidecar", "db"} <= set(trace["layers"])
        assert abs(sum(trace["layers"].values()) - trace["duration_ms"]) < 0.01
    assert baseline.verdict["match"] is True


def test_baseline_spans_carry_the_pod_identity(baseline: Outcome) -> None:
    trace = baseline.report["traces"][0]
    by_service = {}
    for span in trace["spans"]:
        by_service.setdefault(span["service"], span)
    app, db = by_service["shop"]["resource"], by_service["shop-db"]["resource"]
    pod = baseline.run.pods[0]
    assert app["k8s.pod.name"] == db["k8s.pod.name"] == pod
    assert app["k8s.namespace.name"] == "shop"
    assert app["k8s.container.name"] == "app" and db["k8s.container.name"] == "db"
    assert app["k8s.pod.uid"] == db["k8s.pod.uid"]
    assert not any(k.startswith("k8s.") for k in by_service["loadgen"]["resource"])
    sql = [s for s in trace["spans"] if s["attributes"].get("db.system") == "sqlite"]
    assert sql and all(s["attributes"]["db.system.name"] == "sqlite" for s in sql)
    assert all(s["attributes"]["db.query.text"] == s["attributes"]["db.statement"] for s in sql)
    ingress = [s for s in trace["spans"] if s["service"] == "ingress"]
    assert sorted(s["kind"] for s in ingress) == ["client", "server"]
    assert all(s["attributes"]["tracekit.component"] == "ingress" for s in ingress)
    server = next(s for s in ingress if s["kind"] == "server")
    assert server["attributes"]["tracekit.ingress.name"] == "shop"
    assert server["attributes"]["tracekit.service.name"] == "web-service"


@pytest.mark.parametrize("name", ["slow-db", "slow-ingress"])
def test_delay_scenarios_recover_the_injected_delay(baseline: Outcome, name: str) -> None:
    scenario = scenarios.get(name)
    outcome = run_scenario(name, requests=60)
    assert_nothing_lost(outcome)
    layer = scenario.expected_layer
    assert layer is not None
    measured = outcome.report["summary"]["layers"][layer]["p50_ms"]
    expected = baseline.report["summary"]["layers"][layer]["p50_ms"] + scenario.delay_ms
    assert abs(measured - expected) <= max(2.0, 0.1 * scenario.delay_ms), (measured, expected)
    assert outcome.verdict["blamed_layer"] == layer and outcome.verdict["match"]


def _assert_failures_blamed(outcome: Outcome, layer: str) -> Counter[str]:
    failed_requests = [r for r in outcome.run.results if not 200 <= r["status"] < 400]
    failed_traces = [t for t in outcome.report["traces"] if t["status"] == "error"]
    # Every request the client saw fail is a failed trace, and the other way round.
    assert {r["trace_id"] for r in failed_requests} == {t["trace_id"] for t in failed_traces}
    blamed = Counter(t["diagnosis"]["failed_layer"] for t in failed_traces)
    if failed_traces:
        assert blamed[layer] >= 0.95 * len(failed_traces), blamed
    return blamed


@pytest.mark.parametrize(
    ("name", "status"),
    [("ingress-misconfig", 404), ("selector-mismatch", 503)],
)
def test_routing_failures_are_blamed_on_the_right_layer(name: str, status: int) -> None:
    outcome = run_scenario(name, requests=30)
    assert_nothing_lost(outcome)
    assert {r["status"] for r in outcome.run.results} == {status}
    _assert_failures_blamed(outcome, scenarios.get(name).expected_layer or "")
    # The ingress answered by itself: no pod ever saw these requests.
    for trace in outcome.report["traces"]:
        assert services_of(trace) == {"loadgen", "ingress"}
    assert outcome.verdict["match"]


@pytest.mark.parametrize(("name", "status"), [("app-bug", 500), ("db-error", 503)])
def test_partial_failures_are_blamed_on_the_right_layer(name: str, status: int) -> None:
    outcome = run_scenario(name, requests=60)
    assert_nothing_lost(outcome)
    failed = [r for r in outcome.run.results if r["status"] >= 400]
    assert failed, "the injected error rate produced no failure"
    assert {r["status"] for r in failed} == {status}
    _assert_failures_blamed(outcome, scenarios.get(name).expected_layer or "")
    assert outcome.verdict["match"]


def test_pod_failure_only_in_flight_requests_fail_and_traffic_continues() -> None:
    outcome = run_scenario("pod-failure", requests=80, replicas=2)
    assert_nothing_lost(outcome)
    run = outcome.run
    victim = outcome.verdict["killed_pods"]
    assert len(victim) == 1
    texts = [text for _, text in run.events]
    assert any(f"pod {victim[0]} failed its readiness probe" in t for t in texts), texts
    # Failures are the requests in flight to (or routed to) the dead pod before readiness removed it:
    # 502 from the ingress, blamed on the Service hop; the rest of the run is served by the survivor.
    # (A 503 is possible too if the lone survivor, swamped on a busy machine, misses two probes.)
    failed = [r for r in run.results if r["status"] not in (200, 201)]
    assert {r["status"] for r in failed} <= {502, 503}, failed
    assert len(failed) <= len(run.results) // 4
    _assert_failures_blamed(outcome, "service")
    last = sorted(run.results, key=lambda r: r["i"])[-20:]
    assert all(200 <= r["status"] < 300 for r in last)
    survivor = next(p for p in run.pods if p != victim[0])
    assert outcome.verdict["requests_per_pod"][survivor] > outcome.verdict["requests_per_pod"].get(
        victim[0], 0
    )


def test_scale_up_new_pods_take_traffic_once_ready() -> None:
    outcome = run_scenario("scale-up", requests=150, replicas=1)
    assert_nothing_lost(outcome)
    assert outcome.report["summary"]["error_traces"] == 0
    added = outcome.run.added_pods
    assert len(added) == 1
    texts = [text for _, text in outcome.run.events]
    scaled_at = next(t for t, text in outcome.run.events if "scaled" in text)
    ready_at = next(t for t, text in outcome.run.events if f"pod {added[0]} is Ready" in text)
    assert ready_at > scaled_at, texts
    assert outcome.verdict["requests_per_pod"].get(added[0], 0) > 0, outcome.verdict["requests_per_pod"]


def test_a_container_that_cannot_start_is_reported_and_everything_stops() -> None:
    broken = dataclasses.replace(scenarios.get("baseline"), name="broken", pod_env={"DB_ERROR_RATE": "2"})
    demo = Demo(DemoOptions(broken, requests=5, replicas=1))
    try:
        with pytest.raises(DemoError, match="DB_ERROR_RATE"):
            demo.run()
        assert demo.processes.procs  # it did start some
        assert all(proc.poll() is not None for proc in demo.processes.procs.values())
    finally:
        demo.cleanup()

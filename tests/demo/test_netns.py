"""Ground truth on the real pod network: namespaces, veth links, nftables DNAT, DNS (root on Linux).

Each test runs the whole demo with ``network="netns"``: the client resolves the shop through the demo's
DNS server and connects to the load balancer's VIP; the ingress connects to the Service's ClusterIP
and the kernel's nftables rules pick the pod. Faults are injected where they really happen (a DNS zone
without the record, a delay or loss on one pod's link, a node's links unplugged) and compared with
what the analyzer finds.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from demo_app import scenarios
from demo_app.command import network_path
from demo_app.network import netns, plan, unavailable_reason
from demo_app.verdict import trace_pod
from tests.demo.conftest import Outcome, assert_nothing_lost, run_scenario

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason())),
]


def netns_run(name: str, **kwargs: object) -> Outcome:
    outcome = run_scenario(name, network="netns", **kwargs)  # type: ignore[arg-type]
    assert not [n for n in netns.existing() if n.startswith(netns.ns_name(""))], "namespaces left behind"
    return outcome


def failed_blamed(outcome: Outcome) -> Counter[str]:
    failed_requests = {r["trace_id"] for r in outcome.run.results if not 200 <= r["status"] < 400}
    failed_traces = [t for t in outcome.report["traces"] if t["status"] == "error"]
    assert failed_requests == {t["trace_id"] for t in failed_traces}
    return Counter(t["diagnosis"]["failed_layer"] for t in failed_traces)


def spans_of(outcome: Outcome, service: str, kind: str) -> list[dict]:
    return [
        s
        for t in outcome.report["traces"]
        for s in t["spans"]
        if s["service"] == service and s["kind"] == kind
    ]


def test_baseline_runs_on_pod_ips_behind_the_service_vip() -> None:
    outcome = netns_run("baseline", requests=40, replicas=2)
    assert_nothing_lost(outcome)
    assert outcome.report["summary"]["error_traces"] == 0
    pod_ips = set(outcome.run.pod_ips.values())
    assert len(pod_ips) == 2 and all(ip.startswith("198.18.") for ip in pod_ips)
    apps = spans_of(outcome, "shop", "server")
    assert {s["resource"]["k8s.pod.ip"] for s in apps} == pod_ips  # both pods served, from their own IPs
    peers = {s["attributes"].get("client.address", s["attributes"].get("net.peer.ip")) for s in apps}
    assert peers == {plan.INGRESS_IP}  # DNAT without SNAT: the pod sees the ingress's own address
    upstream = spans_of(outcome, "ingress", "client")
    assert {s["attributes"]["network.peer.address"] for s in upstream} == {plan.CLUSTER_IP}
    lookups = [s for s in spans_of(outcome, "loadgen", "client") if s["name"] == "DNS A"]
    assert len(lookups) == 40
    assert all(s["attributes"]["dns.answers"] == [plan.LOAD_BALANCER_IP] for s in lookups)
    requests = [s for s in spans_of(outcome, "loadgen", "client") if s["name"] != "DNS A"]
    assert {s["attributes"]["network.peer.address"] for s in requests} == {plan.LOAD_BALANCER_IP}
    for trace in outcome.report["traces"]:  # the lookup is its own span, in the edge layer
        layers = {s["span_id"]: s["layer"] for s in trace["spans"]}
        assert [layers[s["span_id"]] for s in trace["spans"] if s["name"] == "DNS A"] == ["edge"]
    texts = [text for _, text in outcome.run.events]
    assert any(f"{plan.CLUSTER_IP}:80 ->" in t for t in texts), texts
    path = network_path(outcome.report["traces"][0])
    assert path is not None
    hops = [
        f"= {plan.LOAD_BALANCER_IP}",
        f"load balancer {plan.LOAD_BALANCER_IP}:80",
        f"ingress {plan.INGRESS_IP}",
        f"Service web-service {plan.CLUSTER_IP}:80",
    ]
    assert [path.index(h) for h in hops] == sorted(path.index(h) for h in hops), path
    assert path.endswith(":8080") and any(f" {ip}:8080" in path for ip in pod_ips), path


def test_slow_network_delay_is_recovered_in_service_for_that_pod_only() -> None:
    scenario = scenarios.get("slow-network")
    outcome = netns_run("slow-network", requests=100, replicas=2)
    assert_nothing_lost(outcome)
    shaped = outcome.run.shaped_pod
    service: dict[bool, list[float]] = {True: [], False: []}
    for trace in outcome.report["traces"]:
        pod = trace_pod(trace)
        assert pod is not None
        service[pod == shaped].append(trace["layers"].get("service", 0.0))
    assert len(service[True]) >= 20 and len(service[False]) >= 20  # kube-proxy's random split
    affected, others = statistics.median(service[True]), statistics.median(service[False])
    injected = scenario.delay_ms  # two round trips with the pod, each delayed NETWORK_DELAY_MS
    assert abs((affected - others) - injected) <= max(2.0, 0.1 * injected), (affected, others)
    assert others < injected / 2  # the other pod's requests do not carry the delay
    assert outcome.verdict["blamed_layer"] == "service" and outcome.verdict["match"]


def test_packet_loss_shows_up_as_service_time_on_that_pod() -> None:
    outcome = netns_run("packet-loss", requests=100, replicas=2)
    assert_nothing_lost(outcome)
    assert outcome.report["summary"]["error_traces"] == 0  # TCP retransmits: slow, not failed
    growth = outcome.verdict["layer_growth_ms"]
    assert max(growth, key=growth.get) == "service" and growth["service"] > 0, growth
    assert outcome.verdict["blamed_layer"] == "service" and outcome.verdict["match"]


@pytest.mark.parametrize("network", ["netns", "loopback"])
def test_dns_failure_is_blamed_on_edge_for_every_request(network: str) -> None:
    outcome = run_scenario("dns-failure", requests=20, network=network)
    assert_nothing_lost(outcome)
    assert {r["status"] for r in outcome.run.results} == {0}  # no HTTP answer: nothing was sent
    assert failed_blamed(outcome) == Counter({"edge": 20})
    for trace in outcome.report["traces"]:
        assert {s["service"] for s in trace["spans"]} == {"loadgen"}
        assert any(
            s["name"] == "DNS A" and s["attributes"]["error.type"] == "NXDOMAIN" for s in trace["spans"]
        )


@pytest.mark.parametrize(
    ("name", "requests", "replicas"),
    [
        ("pod-failure", 80, 2),
        ("selector-mismatch", 20, 1),
        ("ingress-misconfig", 20, 1),
        ("app-bug", 60, 1),
        ("db-error", 60, 1),
        ("node-down", 80, 3),
    ],
)
def test_failure_scenarios_are_blamed_right_on_the_pod_network(
    name: str, requests: int, replicas: int
) -> None:
    outcome = netns_run(name, requests=requests, replicas=replicas)
    assert_nothing_lost(outcome)
    blamed = failed_blamed(outcome)
    assert blamed, "the scenario produced no failure"
    expected = scenarios.get(name).expected_layer
    assert blamed[expected] >= 0.95 * sum(blamed.values()), blamed
    assert outcome.verdict["match"]
    if name == "selector-mismatch":  # the kernel rejected the ClusterIP: no endpoints in the map
        assert {r["status"] for r in outcome.run.results} == {502}
        assert any("none (connections rejected)" in text for _, text in outcome.run.events)


def test_scale_up_new_pods_join_the_nftables_endpoints() -> None:
    outcome = netns_run("scale-up", requests=300, replicas=1)  # 12 s: time for a busy start
    assert_nothing_lost(outcome)
    assert outcome.report["summary"]["error_traces"] == 0
    added = outcome.run.added_pods[0]
    assert outcome.verdict["requests_per_pod"].get(added, 0) > 0
    ip = outcome.run.pod_ips[added]
    assert any(ip in text and "nftables" in text for _, text in outcome.run.events)


def _demo_process(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "tracekit"), "demo", "--network", "netns", "--requests", "2000",
         *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip


def _wait_for_load(proc: subprocess.Popen[str]) -> list[str]:
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "load generator started" in line:
            return seen
    raise AssertionError("".join(seen))


def _ours(pid: int) -> list[str]:
    return [n for n in netns.existing() if n.startswith(netns.ns_name("", owner=pid))]


def test_ctrl_c_removes_namespaces_and_processes(tmp_path: Path) -> None:
    proc = _demo_process(tmp_path)
    _wait_for_load(proc)
    assert len(_ours(proc.pid)) >= 4  # node, pods, ingress, client
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 130
    assert _ours(proc.pid) == []


def test_a_killed_runs_leftovers_are_removed_at_the_next_start(tmp_path: Path) -> None:
    proc = _demo_process(tmp_path)
    _wait_for_load(proc)
    leftovers = _ours(proc.pid)
    inside = [int(p) for n in leftovers for p in netns.run(["ip", "netns", "pids", n]).split()]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _ours(proc.pid) == leftovers  # nothing could clean up after a SIGKILL
    outcome = netns_run("baseline", requests=5, replicas=1)
    assert any(f"removed {len(leftovers)} namespace(s)" in text for _, text in outcome.run.events)
    assert _ours(proc.pid) == []
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in inside) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(Path(f"/proc/{pid}").exists() for pid in inside)  # its pods' processes are gone too


def test_caddy_as_the_ingress_controller_its_spans_are_classified_ingress() -> None:
    outcome = netns_run("baseline", requests=30, replicas=2, ingress="caddy")
    assert_nothing_lost(outcome)
    assert outcome.report["summary"]["error_traces"] == 0
    for trace in outcome.report["traces"]:
        caddy = [s for s in trace["spans"] if s["resource"].get("webengine.name") == "Caddy"]
        assert len(caddy) == 1 and caddy[0]["kind"] == "server" and caddy[0]["layer"] == "ingress"
        assert caddy[0]["resource"]["k8s.pod.ip"] == plan.INGRESS_IP
        app = next(s for s in trace["spans"] if s["service"] == "shop" and s["kind"] == "server")
        assert app["parent_id"] == caddy[0]["span_id"]  # W3C context went through Caddy
    assert set(outcome.verdict["requests_per_pod"]) == set(outcome.run.pods)


@pytest.mark.parametrize(("name", "status"), [("selector-mismatch", 502), ("ingress-misconfig", 404)])
def test_caddy_failures_are_blamed_right(name: str, status: int) -> None:
    outcome = netns_run(name, requests=20, replicas=1, ingress="caddy")
    assert_nothing_lost(outcome)
    assert {r["status"] for r in outcome.run.results} == {status}
    # Caddy's one span carries the status it answered (its errors are answered inside the span).
    assert failed_blamed(outcome) == Counter({scenarios.get(name).expected_layer: 20})

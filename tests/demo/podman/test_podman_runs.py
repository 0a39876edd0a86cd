"""Ground truth for ``tracekit demo --runtime podman``: the image's containers, run by podman from the
Deployment's YAML, produce the traces; nothing is lost and nothing is left behind.

These tests need root, podman (with runc), kubectl and the image (`make image`; .ci/run builds it).
Elsewhere they skip, saying why; in CI a missing piece is a failure.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo_app import scenarios
from demo_app.launcher import Demo, DemoError, DemoOptions
from demo_app.podman import manifests
from demo_app.podman.engine import NETWORK_PREFIX, Podman
from demo_app.podman.runtime import Snapshot
from tests.demo.conftest import Outcome, assert_nothing_lost, run_scenario

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[3]
DEMO = [sys.executable, "-m", "tracekit", "demo", "--runtime", "podman"]


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "podman's pods need root here"
    if shutil.which("podman") is None or shutil.which("runc") is None:
        return "podman and runc are not installed (apt-get install podman runc)"
    if (os.environ.get("KUBECTL") or shutil.which("kubectl")) is None:
        return "kubectl is not installed (needed for `kubectl kustomize`)"
    if not Podman().image_exists("tracekit-demo:0.1.0"):
        return "the image tracekit-demo:0.1.0 is not built (make image)"
    return None


@pytest.fixture(scope="module", autouse=True)
def podman_ready() -> Iterator[Podman]:
    reason = _missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    podman = Podman()
    yield podman
    assert_nothing_left(podman)


def assert_nothing_left(podman: Podman, network: str | None = None) -> None:
    """No pod, container, volume or network of a demo run (of this one, or of any) is left."""
    prefix = network or NETWORK_PREFIX
    assert not [n for n in podman.networks() if n.startswith(prefix)]
    pods = podman.json("pod", "ps", "--format", "json")
    assert not [p["Name"] for p in pods if str(p["Name"]).startswith(("shop-", NETWORK_PREFIX))]
    containers = podman.json("ps", "-a", "--format", "json")
    assert not [c["Names"] for c in containers if str(c.get("PodName", "")).startswith("shop-")]
    volumes = podman.json("volume", "ls", "--format", "json")
    assert not [v["Name"] for v in volumes if str(v["Name"]).startswith("shop-")]


_cache: dict[str, Outcome] = {}


def podman_run(name: str, **kwargs: object) -> Outcome:
    key = f"{name} {sorted(kwargs.items())}"
    if key not in _cache:
        _cache[key] = run_scenario(name, runtime="podman", **kwargs)
    return _cache[key]


@pytest.fixture(scope="module")
def baseline() -> Outcome:
    return podman_run("baseline", requests=40, replicas=2)


def app_resources(outcome: Outcome) -> list[dict]:
    return [
        span["resource"]
        for trace in outcome.report["traces"]
        for span in trace["spans"]
        if span["service"] in ("shop", "shop-db")
    ]


def test_every_request_is_a_trace_served_by_the_pods_podman_ran(baseline: Outcome) -> None:
    assert_nothing_lost(baseline)
    assert baseline.report["summary"]["error_traces"] == 0
    snapshot: Snapshot = baseline.run.podman
    ran = snapshot.pod_names()
    assert set(baseline.run.pods) <= ran
    # `podman pod ps` as it was during the run: both replicas running, two containers each plus infra.
    replicas = [p for p in snapshot.pod_ps if p["Name"] in baseline.run.pods]
    assert len(replicas) == 2
    assert all(p["Status"] == "Running" and len(p["Containers"]) == 3 for p in replicas)
    resources = app_resources(baseline)
    assert len(resources) >= 4 * len(baseline.run.results)  # shop + shop-db SERVER/CLIENT/SQL spans
    for resource in resources:
        assert resource["k8s.pod.name"] in baseline.run.pods
        assert resource["k8s.container.name"] in ("app", "db")
        assert resource["k8s.pod.ip"] == snapshot.pod_ips[resource["k8s.pod.name"]]
        assert resource["k8s.namespace.name"] == "shop"
    served = {r["k8s.pod.name"] for r in resources if r["k8s.container.name"] == "app"}
    assert served == set(baseline.run.pods)  # the Service spread the requests over both


def test_the_containers_ran_as_the_manifest_says(baseline: Outcome) -> None:
    kit = manifests.select_kit(manifests.kubectl_kustomize(ROOT / "deploy" / "base"))
    pod_sc = kit.template["spec"]["securityContext"]
    processes = baseline.run.podman.processes
    assert {(p.pod, p.container) for p in processes} == {
        (pod, c) for pod in baseline.run.pods for c in ("app", "db")
    }
    for proc in processes:
        assert proc.uid == pod_sc["runAsUser"] != 0
        assert proc.gid == pod_sc["runAsGroup"]
        assert proc.cap_eff == 0  # capabilities: drop: [ALL]
        assert proc.no_new_privs  # allowPrivilegeEscalation: false


def test_the_ingress_reaches_pod_ips_on_the_demo_network(baseline: Outcome) -> None:
    subnet = next(iter(baseline.run.podman.pod_ips.values())).rsplit(".", 1)[0]
    assert subnet.startswith(("198.18.", "198.19."))
    for trace in baseline.report["traces"]:
        client = next(s for s in trace["spans"] if s["service"] == "ingress" and s["kind"] == "client")
        peer = client["attributes"]["network.peer.address"]
        assert peer in baseline.run.podman.pod_ips.values()
        assert client["attributes"]["network.peer.port"] == 8080


def test_pod_failure_stops_a_real_container_and_is_blamed_on_the_service() -> None:
    # Paced (50/s): the run goes on for about a second after the kill, so requests are routed to
    # the victim after it died. Unpaced, the last 48 requests can all be answered while `podman kill`
    # is still on its way, and nothing fails.
    outcome = podman_run("pod-failure", requests=80, replicas=2)
    assert_nothing_lost(outcome)
    victim = outcome.verdict["killed_pods"]
    assert len(victim) == 1 and victim[0] in outcome.run.podman.pod_names()
    assert sorted(outcome.run.killed_pods) == [f"{victim[0]}-app", f"{victim[0]}-db"]
    # podman saw the pod lose its containers (SIGKILL: exit 137), not a graceful stop
    [pod] = [p for p in outcome.run.podman.pod_ps if p["Name"] == victim[0]]
    assert pod["Status"] != "Running"
    failed = outcome.verdict["failed_requests"]
    assert failed > 0
    assert outcome.verdict["failed_layers"].get("service", 0) >= 0.95 * failed
    survivor = next(p for p in outcome.run.pods if p != victim[0])
    assert outcome.verdict["requests_per_pod"][survivor] > outcome.verdict["requests_per_pod"].get(
        victim[0], 0
    )


def test_selector_mismatch_leaves_the_service_without_endpoints() -> None:
    outcome = podman_run("selector-mismatch", requests=20, replicas=1)
    assert_nothing_lost(outcome)
    assert {r["status"] for r in outcome.run.results} == {503}
    assert outcome.verdict["failed_layers"] == {"service": 20}
    assert not app_resources(outcome)


def test_scale_up_plays_new_pods() -> None:
    outcome = podman_run("scale-up", requests=300, replicas=1)
    assert_nothing_lost(outcome)
    [added] = outcome.run.added_pods
    assert added in outcome.run.podman.pod_names()
    ready_at = next(t for t, text in outcome.run.events if f"pod {added} is Ready" in text)
    scaled_at = next(t for t, text in outcome.run.events if "scaled" in text)
    assert ready_at > scaled_at
    assert outcome.verdict["requests_per_pod"].get(added, 0) > 0


def test_a_container_that_exits_is_reported_and_everything_is_removed(podman_ready: Podman) -> None:
    broken = dataclasses.replace(scenarios.get("baseline"), name="broken", pod_env={"DB_ERROR_RATE": "2"})
    demo = Demo(DemoOptions(broken, requests=5, replicas=1, runtime="podman"))
    try:
        with pytest.raises(DemoError, match="DB_ERROR_RATE"):
            demo.run()
        assert_nothing_left(podman_ready)
    finally:
        demo.cleanup()


def test_ctrl_c_removes_everything(podman_ready: Podman) -> None:
    from demo_app.network import netns

    proc = subprocess.Popen(
        [*DEMO, "--requests", "2000", "--rate", "20"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 120
    for line in proc.stderr:
        if "load generator started" in line or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130, rest
    assert "every process was stopped" in rest
    assert_nothing_left(podman_ready)
    assert not [n for n in netns.existing() if n.startswith(netns.ns_name("", owner=proc.pid))]


def test_with_the_pod_network_podmans_pods_are_the_endpoints_behind_the_service_vip(
    podman_ready: Podman,
) -> None:
    from demo_app.network import netns, plan, unavailable_reason

    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    # Paced, as above: requests reach the victim after it died.
    outcome = podman_run("pod-failure", requests=80, replicas=2, network="netns")
    assert_nothing_lost(outcome)
    ips = outcome.run.podman.pod_ips
    assert set(ips) == set(outcome.run.pods)
    # kube-proxy's map (nftables) held the pods' addresses as podman's sandboxes have them
    texts = [text for _, text in outcome.run.events]
    both = ", ".join(f"{ip}:8080" for ip in sorted(ips.values()))
    assert f"nftables: Service web-service {plan.CLUSTER_IP}:80 -> {both}" in texts, texts
    for resource in app_resources(outcome):
        assert resource["k8s.pod.ip"] == ips[resource["k8s.pod.name"]]
        assert resource["k8s.container.name"] in ("app", "db")
    for trace in outcome.report["traces"]:
        client = next(s for s in trace["spans"] if s["service"] == "ingress" and s["kind"] == "client")
        assert client["attributes"]["network.peer.address"] == plan.CLUSTER_IP
    failed = outcome.verdict["failed_requests"]
    assert failed > 0
    assert outcome.verdict["failed_layers"].get("service", 0) >= 0.95 * failed
    assert not [n for n in netns.existing() if n.startswith(netns.ns_name(""))]


def test_what_a_killed_run_left_is_removed_by_the_next_one(podman_ready: Podman, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*DEMO, "--network", "loopback", "--requests", "2000", "--rate", "20"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "load generator started" in line:
            break
    proc.kill()  # SIGKILL: no clean-up of its own
    proc.communicate(timeout=60)
    from demo_app.liveness import orphans, process_alive, stop_orphans

    left_running = [pid for pid in orphans() if _owner_of(pid) == proc.pid]
    assert left_running  # the ingress and the load generator, on the host
    network = f"{NETWORK_PREFIX}{proc.pid}"
    assert network in podman_ready.networks()
    left = [
        p["Name"]
        for p in podman_ready.json("pod", "ps", "--format", "json", "--filter", f"network={network}")
    ]
    assert len(left) == 3  # two replicas and the network's holder
    kit = manifests.select_kit(manifests.kubectl_kustomize(ROOT / "deploy" / "base"))
    from demo_app.podman.runtime import PodmanPods

    PodmanPods(kit, tmp_path).remove_orphans()
    assert_nothing_left(podman_ready)
    assert set(left_running) <= set(stop_orphans())  # what the next run does first
    deadline = time.monotonic() + 10
    while any(map(process_alive, left_running)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in left_running if process_alive(pid)]


def _owner_of(pid: int) -> int | None:
    from demo_app.liveness import OWNER_ENV

    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    marker = f"{OWNER_ENV}=".encode()
    return next((int(item[len(marker) :]) for item in environ if item.startswith(marker)), None)

"""The local cluster model: manifests from deploy/base, pods, scenarios' changes, the request mix."""

from __future__ import annotations

from pathlib import Path

from demo_app import cluster, scenarios
from demo_app.loadgen import plan
from tracekit.k8s.routing import resolve_ingress, service_selects


def test_manifests_come_from_deploy_base_and_route_to_the_pods() -> None:
    ingress, service, sources = cluster.load_manifests()
    if cluster.DEPLOY_BASE.is_dir():
        assert sources == [
            str(cluster.DEPLOY_BASE / "ingress.yaml"),
            str(cluster.DEPLOY_BASE / "service.yaml"),
        ]
    match = resolve_ingress([ingress], "shop.example.com", "/products/1")
    assert match is not None and match.service_name == service["metadata"]["name"] == "web-service"
    assert service_selects(service, cluster.POD_LABELS)


def test_fallback_manifests_when_deploy_is_absent(tmp_path: Path) -> None:
    ingress, service, sources = cluster.load_manifests(tmp_path)
    assert sources == ["built-in copy of deploy/base"] * 2
    assert cluster.ingress_host(ingress) == "shop.example.com"
    assert service["spec"]["ports"][0]["targetPort"] == 8080


def test_pod_target_resolves_named_and_numbered_target_ports() -> None:
    pod = cluster.Pod("p", "uid", "node-1", "127.0.0.1", app_port=41000, db_port=41001)
    k8s = pod.to_k8s()
    assert cluster.pod_target(k8s, 8080) == ("127.0.0.1", 41000)
    assert cluster.pod_target(k8s, "http") == ("127.0.0.1", 41000)
    assert cluster.pod_target(k8s, 9999) is None
    assert pod.downward_env("db")["CONTAINER_NAME"] == "db"


def test_scenarios_break_what_they_say() -> None:
    ingress, service, _ = cluster.load_manifests()
    typo = scenarios.get("ingress-misconfig").mutate
    selector = scenarios.get("selector-mismatch").mutate
    assert typo is not None and selector is not None
    broken_ingress, _ = typo(ingress, service)
    assert resolve_ingress([broken_ingress], "shop.example.com", "/products") is None
    assert resolve_ingress([ingress], "shop.example.com", "/products") is not None  # original untouched
    _, broken_service = selector(ingress, service)
    assert not service_selects(broken_service, cluster.POD_LABELS)
    for s in scenarios.SCENARIOS.values():
        assert s.kind in ("baseline", "delay", "failure")
        assert (s.expected_layer is None) == (s.kind == "baseline")


def test_request_mix_is_repeatable_and_mostly_single_statement() -> None:
    calls = plan(1000, seed=7)
    assert calls == plan(1000, seed=7)
    gets = sum(1 for c in calls if c.method == "GET")
    assert 0.8 < gets / len(calls) < 0.9

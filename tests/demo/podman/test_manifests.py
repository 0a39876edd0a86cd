"""The Pod podman plays is the Deployment's template, changed only where podman 4.3 has a gap."""

from __future__ import annotations

import ipaddress
import re

import pytest

from demo_app.podman import manifests
from demo_app.podman.engine import DEMO_RANGE, pick_subnet
from tests.deploy.kit import render

FACTS = manifests.PodFacts(
    name="shop-6b8dfc7d9f-x2kqp",
    namespace="shop",
    uid="0f6e5c1a-8d3b-4e57-9a0c-2b4f6d8e1a3c",
    ip="198.19.7.10",
    node="node-a",
)


@pytest.fixture(scope="module")
def kit() -> manifests.Kit:
    return manifests.select_kit(render("deploy"))


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container["env"]}


def test_the_kit_is_the_rendered_deployment_service_and_ingress(kit: manifests.Kit) -> None:
    assert kit.deployment["metadata"]["name"] == "shop"
    assert kit.service["metadata"]["name"] == "web-service"
    assert kit.ingress["metadata"]["name"] == "shop"
    assert kit.namespace == "shop"
    # kustomize's hashed ConfigMap name, as the env's configMapKeyRef names it after rendering
    [cm] = [c for c in kit.config_maps if c["metadata"]["name"].startswith("tracekit-cluster-")]
    refs = {
        (e.get("valueFrom") or {}).get("configMapKeyRef", {}).get("name")
        for c in kit.template["spec"]["containers"]
        for e in c["env"]
    }
    assert cm["metadata"]["name"] in refs


def test_everything_but_the_gaps_goes_to_podman_as_written(kit: manifests.Kit) -> None:
    pod = manifests.pod_for_podman(kit, FACTS, collector_ip="198.19.7.1")
    template = kit.template["spec"]
    assert pod["kind"] == "Pod" and pod["metadata"]["name"] == FACTS.name
    assert pod["metadata"]["namespace"] == "shop"
    assert pod["spec"]["securityContext"] == template["securityContext"]
    for played, written in zip(pod["spec"]["containers"], template["containers"], strict=True):
        for key in (
            "name",
            "image",
            "command",
            "readinessProbe",
            "livenessProbe",
            "resources",
            "securityContext",
        ):
            assert played.get(key) == written.get(key), key
        assert "ports" not in played  # podman 4.3 would publish them on the host
        assert [m["mountPath"] for m in played["volumeMounts"]] == [
            m["mountPath"] for m in written["volumeMounts"]
        ]
        literal = {e["name"]: e["value"] for e in written["env"] if "value" in e and "$(" not in e["value"]}
        assert {k: env_of(played)[k]["value"] for k in literal} == literal
        # podman fills metadata.name itself; configMapKeyRef goes through (podman reads --configmap)
        assert env_of(played)["POD_NAME"] == env_of(written)["POD_NAME"]
        assert env_of(played)["K8S_CLUSTER_NAME"] == env_of(written)["K8S_CLUSTER_NAME"]


def test_downward_api_fields_podman_refuses_are_filled_and_var_references_expanded(
    kit: manifests.Kit,
) -> None:
    pod = manifests.pod_for_podman(kit, FACTS, collector_ip="198.19.7.1")
    for container in pod["spec"]["containers"]:
        env = env_of(container)
        assert env["POD_NAMESPACE"] == {"name": "POD_NAMESPACE", "value": "shop"}
        assert env["POD_UID"]["value"] == FACTS.uid
        assert env["POD_IP"]["value"] == FACTS.ip
        assert env["NODE_NAME"]["value"] == FACTS.node
        attrs = dict(kv.split("=", 1) for kv in env["OTEL_RESOURCE_ATTRIBUTES"]["value"].split(","))
        assert attrs["k8s.pod.name"] == FACTS.name
        assert attrs["k8s.pod.uid"] == FACTS.uid
        assert attrs["k8s.node.name"] == FACTS.node
        assert attrs["k8s.container.name"] == container["name"]
        assert "$(" not in env["OTEL_RESOURCE_ATTRIBUTES"]["value"]


def test_empty_dirs_belong_to_one_pod_and_the_collector_name_resolves_to_the_receiver(
    kit: manifests.Kit,
) -> None:
    pod = manifests.pod_for_podman(kit, FACTS, collector_ip="198.19.7.1")
    volumes = {v["name"] for v in pod["spec"]["volumes"]}
    assert volumes == {f"{FACTS.name}-data", f"{FACTS.name}-tmp"}
    mounts = {m["name"] for c in pod["spec"]["containers"] for m in c["volumeMounts"]}
    assert mounts <= volumes
    assert pod["spec"]["hostAliases"] == [{"ip": "198.19.7.1", "hostnames": ["otel-collector.observability"]}]
    assert manifests.otlp_port(kit) == 4318
    assert manifests.container_port(kit, "http") == 8080


def test_scenario_env_is_set_as_kubectl_set_env_would(kit: manifests.Kit) -> None:
    pod = manifests.pod_for_podman(
        kit, FACTS, collector_ip="198.19.7.1", extra_env={"DB_DELAY_MS": "40", "OTEL_SERVICE_NAME": "x"}
    )
    for container in pod["spec"]["containers"]:
        env = env_of(container)
        assert env["DB_DELAY_MS"]["value"] == "40"
        assert env["OTEL_SERVICE_NAME"]["value"] == "x"
        assert [e["name"] for e in container["env"]].count("OTEL_SERVICE_NAME") == 1


@pytest.mark.parametrize(
    ("value", "known", "expanded"),
    [
        ("a=$(A),b=$(B)", {"A": "1", "B": "2"}, "a=1,b=2"),
        ("$(MISSING) stays", {}, "$(MISSING) stays"),
        ("$$(A) is escaped", {"A": "1"}, "$(A) is escaped"),
        ("cost: $$5", {}, "cost: $5"),
        ("$(A", {"A": "1"}, "$(A"),
    ],
)
def test_var_references_follow_the_kubernetes_rule(value: str, known: dict[str, str], expanded: str) -> None:
    assert manifests.expand_refs(value, known) == expanded


def test_pod_names_are_shaped_as_a_replicasets(kit: manifests.Kit) -> None:
    hash_ = manifests.template_hash(kit.template)
    name = manifests.pod_name("shop", hash_, bytes(range(5)))
    assert re.fullmatch(r"shop-[bcdfghjklmnpqrstvwxz2456789]{6,10}-[bcdfghjklmnpqrstvwxz2456789]{5}", name), (
        name
    )
    assert manifests.template_hash(kit.template) == hash_  # stable
    changed = {**kit.template, "metadata": {"labels": {"other": "x"}}}
    assert manifests.template_hash(changed) != hash_


def test_the_gaps_named_are_those_the_template_uses(kit: manifests.Kit) -> None:
    names = [gap.split(":")[0] for gap in manifests.podman_gaps(kit)]
    assert "readinessProbe" in names and "livenessProbe" in names and "containerPort" in names
    bare = manifests.Kit(
        deployment={
            "metadata": {"name": "x"},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
        },
        service=kit.service,
        ingress=kit.ingress,
        config_maps=(),
    )
    assert manifests.podman_gaps(bare) == []


def test_the_demo_subnet_is_in_the_benchmarking_range_and_avoids_used_ones() -> None:
    first = pick_subnet([], seed=0)
    assert first.subnet_of(DEMO_RANGE) and first.prefixlen == 24
    taken = [first, ipaddress.ip_network("198.18.1.0/24")]
    picked = pick_subnet([*taken, ipaddress.ip_network("0.0.0.0/1")], seed=0)
    assert not any(picked.overlaps(t) for t in taken)
    with pytest.raises(Exception, match="no free"):
        pick_subnet([DEMO_RANGE], seed=0)


def test_a_kit_without_the_deployment_is_refused_in_one_line() -> None:
    with pytest.raises(manifests.ManifestError, match="0 Deployment shop"):
        manifests.select_kit([{"kind": "Service", "metadata": {"name": "web-service"}}])


def test_a_link_fault_scenario_is_refused_with_podman_in_one_line() -> None:
    from click.testing import CliRunner

    from tracekit.cli import main

    result = CliRunner().invoke(main, ["demo", "--runtime", "podman", "--scenario", "slow-network"])
    assert result.exit_code == 2
    assert "--scenario slow-network shapes a pod's link: it needs --runtime local" in result.output
    assert "Traceback" not in result.output

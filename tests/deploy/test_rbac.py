"""The demo's Role grants exactly the API calls the library makes; the collector's exactly what it uses.

Both expectations are derived, not hand-kept: the demo's from ``tracekit.k8s.api_calls.API_CALLS`` (the
list the library's own code takes its calls from), the collector's from collector/config.yaml.
"""

from __future__ import annotations

import pytest
import yaml

from tests.deploy.kit import ROOT, TARGETS, Obj, find, one, render
from tracekit.k8s.api_calls import API_CALLS, role_rules

Grant = tuple[str, str, str]  # (apiGroup, resource, verb)


def _grants(rules: list[Obj]) -> set[Grant]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule.get("apiGroups") or []
        for resource in rule.get("resources") or []
        for verb in rule.get("verbs") or []
    }


def _library_grants() -> set[Grant]:
    return {(call.group, call.resource, verb) for call in API_CALLS for verb in call.verbs}


def _shop_role(objects: list[Obj]) -> Obj:
    # The Role bound to the ServiceAccount the shop pods run as.
    deployment = one(objects, "Deployment", "shop", "shop")
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    bindings = [
        b
        for b in find(objects, "RoleBinding", namespace="shop")
        if {"kind": "ServiceAccount", "name": account, "namespace": "shop"} in b["subjects"]
    ]
    assert len(bindings) == 1, f"expected one RoleBinding for ServiceAccount {account}"
    assert bindings[0]["roleRef"]["kind"] == "Role"
    return one(objects, "Role", bindings[0]["roleRef"]["name"], "shop")


def test_library_calls_are_all_namespaced() -> None:
    # A cluster-scoped call would need a ClusterRole for the demo; the kit grants none on purpose.
    assert all(call.namespaced for call in API_CALLS), [c for c in API_CALLS if not c.namespaced]


@pytest.mark.parametrize("target", TARGETS)
def test_shop_role_grants_exactly_the_library_api_calls(target: str) -> None:
    role = _shop_role(render(target))
    granted, needed = _grants(role["rules"]), _library_grants()
    hint = yaml.safe_dump(role_rules(), default_flow_style=None, sort_keys=False)
    assert granted == needed, (
        f"Role {role['metadata']['name']} differs from tracekit/k8s/api_calls.py\n"
        f"  missing: {sorted(needed - granted)}\n  extra:   {sorted(granted - needed)}\n"
        f"rules for deploy/base/rbac.yaml:\n{hint}"
    )


def test_role_rules_helper_agrees_with_api_calls() -> None:
    # The library's own rendering of API_CALLS as rules, which the hint above prints, grants the same.
    assert _grants(role_rules()) == _library_grants()


def test_shop_pods_mount_the_token_the_library_uses() -> None:
    objects = render("deploy")
    spec = one(objects, "Deployment", "shop", "shop")["spec"]["template"]["spec"]
    account = one(objects, "ServiceAccount", spec["serviceAccountName"], "shop")
    assert spec.get("automountServiceAccountToken") is True
    assert account.get("automountServiceAccountToken") is not False


# --- the collector -------------------------------------------------------------------------------


def _collector_needs(config: Obj) -> set[Grant]:
    """What the k8s_attributes processor's configuration makes it watch (its README, "RBAC")."""
    needs: set[Grant] = set()
    for name, proc in (config.get("processors") or {}).items():
        if name.split("/")[0] not in ("k8s_attributes", "k8sattributes"):
            continue
        proc = proc or {}
        extract = proc.get("extract") or {}
        metadata = set(extract.get("metadata") or [])
        rules = (extract.get("labels") or []) + (extract.get("annotations") or [])
        sources = {r.get("from", "pod") for r in rules}
        needs |= {("", r, v) for r in ("pods", "namespaces") for v in ("get", "list", "watch")}
        if metadata & {"k8s.deployment.name", "k8s.deployment.uid"} and not extract.get(
            "deployment_name_from_replicaset"
        ):
            needs |= {("apps", "replicasets", v) for v in ("get", "list", "watch")}
        if "k8s.node.uid" in metadata or "node" in sources:
            needs |= {("", "nodes", v) for v in ("get", "list", "watch")}
        if metadata & {"k8s.cronjob.uid", "k8s.cronjob.name"}:
            needs |= {("batch", "jobs", v) for v in ("get", "list", "watch")}
        for kind in ("deployment", "statefulset", "daemonset"):
            if kind in sources:
                needs |= {("apps", f"{kind}s", v) for v in ("get", "list", "watch")}
    return needs


def test_collector_clusterrole_grants_exactly_what_its_config_uses() -> None:
    objects = render("deploy")
    config = yaml.safe_load((ROOT / "collector" / "config.yaml").read_text())
    spec = one(objects, "Deployment", "otel-collector", "observability")["spec"]["template"]["spec"]
    bindings = [
        b
        for b in find(objects, "ClusterRoleBinding")
        if {"kind": "ServiceAccount", "name": spec["serviceAccountName"], "namespace": "observability"}
        in b["subjects"]
    ]
    assert len(bindings) == 1
    role = one(objects, "ClusterRole", bindings[0]["roleRef"]["name"])
    needed = _collector_needs(config)
    assert needed, "collector/config.yaml has no k8s_attributes processor"
    assert _grants(role["rules"]) == needed

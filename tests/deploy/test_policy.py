"""Security and operability policy over every rendered workload and RBAC object.

The demo runs under the Pod Security Standard "restricted" (its namespaces enforce it); these checks
say the same per container, plus what the standard does not cover: requests and limits, probes and
pinned images, and RBAC without wildcards or built-in admin roles.
"""

from __future__ import annotations

import re

import pytest

from tests.deploy.kit import TARGETS, Obj, containers, find, ident, pod_specs, render

#: Built-in ClusterRoles that grant far more than any of our components needs.
ADMIN_ROLES = frozenset({"cluster-admin", "admin", "edit", "system:masters"})


def _each_container(target: str):
    for workload, spec in pod_specs(render(target)):
        for c in containers(spec):
            yield workload, spec, c


def _where(workload: Obj, c: Obj) -> str:
    return f"{ident(workload)} container {c['name']}"


@pytest.mark.parametrize("target", TARGETS)
def test_containers_run_as_non_root(target: str) -> None:
    for workload, spec, c in _each_container(target):
        pod_sc, sc = spec.get("securityContext") or {}, c.get("securityContext") or {}
        assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, _where(workload, c)
        uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
        assert uid is not None and uid != 0, f"{_where(workload, c)}: set a non-zero runAsUser"


@pytest.mark.parametrize("target", TARGETS)
def test_containers_are_locked_down(target: str) -> None:
    for workload, spec, c in _each_container(target):
        sc = c.get("securityContext") or {}
        where = _where(workload, c)
        assert sc.get("allowPrivilegeEscalation") is False, where
        assert sc.get("readOnlyRootFilesystem") is True, where
        assert sc.get("privileged") is not True, where
        assert (sc.get("capabilities") or {}).get("drop") == ["ALL"], where
        assert not (sc.get("capabilities") or {}).get("add"), where
        seccomp = sc.get("seccompProfile") or (spec.get("securityContext") or {}).get("seccompProfile") or {}
        assert seccomp.get("type") == "RuntimeDefault", where


@pytest.mark.parametrize("target", TARGETS)
def test_pods_share_nothing_with_the_node(target: str) -> None:
    for workload, spec in pod_specs(render(target)):
        for field in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(field), f"{ident(workload)}: {field}"
        for volume in spec.get("volumes") or []:
            assert "hostPath" not in volume, f"{ident(workload)}: hostPath volume {volume['name']}"
        for c in containers(spec):
            for port in c.get("ports") or []:
                assert "hostPort" not in port, f"{_where(workload, c)}: hostPort"


@pytest.mark.parametrize("target", TARGETS)
def test_every_container_has_requests_and_limits(target: str) -> None:
    for workload, _, c in _each_container(target):
        resources = c.get("resources") or {}
        for kind in ("requests", "limits"):
            for res in ("cpu", "memory"):
                assert res in (resources.get(kind) or {}), f"{_where(workload, c)}: no {kind}.{res}"


@pytest.mark.parametrize("target", TARGETS)
def test_every_container_has_readiness_and_liveness_probes(target: str) -> None:
    for workload, spec, c in _each_container(target):
        if c in (spec.get("initContainers") or []) and c.get("restartPolicy") != "Always":
            continue  # run-to-completion init containers are not probed
        for probe in ("readinessProbe", "livenessProbe"):
            assert c.get(probe), f"{_where(workload, c)}: no {probe}"


_PINNED = re.compile(r"^[^@\s]+:(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})(@sha256:[0-9a-f]{64})?$")


@pytest.mark.parametrize("target", TARGETS)
def test_images_are_pinned_by_tag(target: str) -> None:
    for workload, _, c in _each_container(target):
        image = c["image"]
        match = _PINNED.match(image.rsplit("/", 1)[-1]) if "/" in image else _PINNED.match(image)
        assert match, f"{_where(workload, c)}: image {image!r} has no tag"
        assert match["tag"] not in ("latest", "main", "master", "edge", "nightly"), f"{image}: floating tag"
        assert c.get("imagePullPolicy") == "IfNotPresent", f"{_where(workload, c)}: imagePullPolicy"


@pytest.mark.parametrize("target", TARGETS)
def test_writable_volumes_are_bounded_emptydirs(target: str) -> None:
    # readOnlyRootFilesystem: every writable path is an emptyDir, each with a sizeLimit so a runaway
    # writer (SQLite, the file exporter) is evicted instead of filling the node's disk.
    for workload, spec in pod_specs(render(target)):
        for volume in spec.get("volumes") or []:
            if "emptyDir" in volume:
                assert (volume["emptyDir"] or {}).get("sizeLimit"), f"{ident(workload)}: {volume['name']}"


# --- RBAC -----------------------------------------------------------------------------------------


def _roles(objects: list[Obj]) -> list[Obj]:
    return find(objects, "Role") + find(objects, "ClusterRole")


@pytest.mark.parametrize("target", TARGETS)
def test_rbac_has_no_wildcards_and_reads_only(target: str) -> None:
    for role in _roles(render(target)):
        assert "aggregationRule" not in role, ident(role)
        for rule in role.get("rules") or []:
            for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                assert "*" not in (rule.get(field) or []), f"{ident(role)}: wildcard in {field}"
            assert set(rule["verbs"]) <= {"get", "list", "watch"}, f"{ident(role)}: {rule['verbs']}"
            assert not {"secrets", "pods/exec", "serviceaccounts/token"} & set(rule.get("resources") or []), (
                ident(role)
            )


@pytest.mark.parametrize("target", TARGETS)
def test_no_binding_to_admin_roles(target: str) -> None:
    objects = render(target)
    for binding in find(objects, "RoleBinding") + find(objects, "ClusterRoleBinding"):
        assert binding["roleRef"]["name"] not in ADMIN_ROLES, ident(binding)
    # The demo's own identity gets a namespaced Role only: nothing cluster-wide.
    for binding in find(objects, "ClusterRoleBinding"):
        for subject in binding["subjects"]:
            assert subject.get("namespace") != "shop", f"{ident(binding)} binds {subject}"

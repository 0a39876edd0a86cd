"""Render and inspect the cluster kit (deploy/) offline: kubectl kustomize, schema validation, lookups.

Every test in this package works on what `kubectl kustomize` renders, never on the YAML files one by
one, so what is checked is exactly what `kubectl apply -k` would send. Rendering is cached per target
for the whole session (kustomize is the slow part).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import SchemaNotFoundError, latest_version

from tests.deploy.crd_schemas import CRD_SCHEMAS

Obj = dict[str, Any]

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"

#: Every kustomize target users apply: name -> directory.
TARGETS: dict[str, Path] = {
    "deploy": DEPLOY,
    "traefik": DEPLOY / "overlays" / "traefik",
    "traefik-k3s": DEPLOY / "overlays" / "traefik-k3s",
    "ingress-nginx": DEPLOY / "overlays" / "ingress-nginx",
    "gateway-api": DEPLOY / "overlays" / "gateway-api",
}

#: Targets that are not the shop stack (they hold neither the shop nor the observability stack):
#: the Dask cluster for `tracekit analyze --scheduler`, which needs the dask-kubernetes operator.
OTHER_TARGETS: dict[str, Path] = {"dask": DEPLOY / "dask"}

#: Kubernetes versions to validate against: the kubectl/kustomize minor we render with (the oldest we
#: claim) and the newest schema set kubernetes-validate bundles (what a fresh cluster runs).
K8S_VERSIONS: tuple[str, ...] = ("1.32", latest_version())

#: Kinds without a namespace (built-in and custom).
CLUSTER_SCOPED = frozenset({"Namespace", "ClusterRole", "ClusterRoleBinding", "GatewayClass"})

#: Kinds whose objects carry a pod template at spec.template.spec.
WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"})


def kubectl() -> str | None:
    """The kubectl to render with: $KUBECTL, else the one on PATH."""
    return os.environ.get("KUBECTL") or shutil.which("kubectl")


@functools.cache
def _render(target: str) -> tuple[Obj, ...]:
    binary = kubectl()
    if binary is None:
        pytest.skip(
            "kubectl is not installed (needed for `kubectl kustomize`); set $KUBECTL or put it on PATH"
        )
    proc = subprocess.run(
        [binary, "kustomize", str(directory(target))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"kubectl kustomize {directory(target)} failed:\n{proc.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(proc.stdout) if doc)


def directory(target: str) -> Path:
    return TARGETS[target] if target in TARGETS else OTHER_TARGETS[target]


def render(target: str) -> list[Obj]:
    """The objects `kubectl kustomize <target>` renders (a fresh list; the objects are shared)."""
    return list(_render(target))


def find(objects: list[Obj], kind: str, name: str | None = None, namespace: str | None = None) -> list[Obj]:
    """Objects of ``kind`` (optionally with this name and namespace)."""
    out = []
    for obj in objects:
        meta = obj.get("metadata") or {}
        if obj.get("kind") != kind:
            continue
        if name is not None and meta.get("name") != name:
            continue
        if namespace is not None and meta.get("namespace") != namespace:
            continue
        out.append(obj)
    return out


def one(objects: list[Obj], kind: str, name: str, namespace: str | None = None) -> Obj:
    """The single object of ``kind``/``name``; fails the test with a clear message otherwise."""
    found = find(objects, kind, name, namespace)
    assert len(found) == 1, f"expected exactly one {kind} {namespace or '*'}/{name}, found {len(found)}"
    return found[0]


def ident(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{obj.get('kind')} {ns + '/' if ns else ''}{meta.get('name')}"


def pod_specs(objects: list[Obj]) -> Iterator[tuple[Obj, Obj]]:
    """(workload, pod spec) for every object that runs pods."""
    for obj in objects:
        if obj.get("kind") in WORKLOAD_KINDS:
            yield obj, obj["spec"]["template"]["spec"]
        elif obj.get("kind") == "CronJob":
            yield obj, obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        elif obj.get("kind") == "Pod":
            yield obj, obj["spec"]
        elif obj.get("kind") == "DaskCluster":  # the operator makes pods of these two specs
            yield obj, obj["spec"]["scheduler"]["spec"]
            yield obj, obj["spec"]["worker"]["spec"]


def containers(pod_spec: Obj) -> list[Obj]:
    """Every container of a pod spec, init and ephemeral ones included."""
    return [
        *(pod_spec.get("initContainers") or []),
        *(pod_spec.get("containers") or []),
        *(pod_spec.get("ephemeralContainers") or []),
    ]


def container(pod_spec: Obj, name: str) -> Obj:
    found = [c for c in containers(pod_spec) if c.get("name") == name]
    assert len(found) == 1, f"expected one container {name!r}, found {len(found)}"
    return found[0]


# --- schema validation ------------------------------------------------------------------------


class SchemaError(AssertionError):
    """A rendered object does not validate (or there is no schema to validate it against)."""


_validated: dict[tuple[str, str], str | None] = {}


def validation_error(obj: Obj, version: str) -> str | None:
    """Validate one object strictly; return the error text, or None when it is valid.

    Built-in kinds go through kubernetes-validate's *strict* schemas (unknown fields are errors);
    custom resources through :data:`tests.deploy.crd_schemas.CRD_SCHEMAS`. A kind neither knows is an
    error, never a skip.
    """
    key = (json.dumps(obj, sort_keys=True), version)
    if key in _validated:
        return _validated[key]
    error: str | None = None
    schema = CRD_SCHEMAS.get((str(obj.get("apiVersion")), str(obj.get("kind"))))
    if schema is not None:
        errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(obj), key=lambda e: list(e.path))
        if errors:
            error = "; ".join(f"{'.'.join(map(str, e.path)) or '<root>'}: {e.message}" for e in errors)
    else:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            error = f"{'.'.join(map(str, e.path)) or '<root>'}: {e.message}"
        except SchemaNotFoundError as e:
            error = f"no schema: {e.message} (add one to tests/deploy/crd_schemas.py for a custom resource)"
    _validated[key] = error
    return error

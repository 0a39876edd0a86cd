"""The local demo's "cluster": the Ingress and Service from ``deploy/base``, and the pods running now.

The launcher is the API server here: it writes the state (Ingresses, Services, Pods as plain Kubernetes
JSON dicts) to one file, atomically, whenever a pod is created or deleted; the ingress hop watches that
file the way a controller watches the API. The manifests are the cluster kit's own YAML files, so a
change to ``deploy/base/ingress.yaml`` or ``service.yaml`` changes the local routing too.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

NAMESPACE = "shop"
POD_LABELS = {"app.kubernetes.io/name": "shop", "app.kubernetes.io/version": "0.1.0"}
#: The app container's port as the Deployment declares it (``containerPort: 8080``, name ``http``).
CONTAINER_PORT = 8080
CONTAINER_PORT_NAME = "http"

#: Where the cluster kit's manifests live in a source checkout.
DEPLOY_BASE = Path(__file__).resolve().parent.parent / "deploy" / "base"

#: The same objects as deploy/base (COMMON.md), for an installed package without the deploy/ tree.
FALLBACK_INGRESS: dict[str, Any] = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "Ingress",
    "metadata": {"name": "shop", "labels": {"app.kubernetes.io/name": "shop"}},
    "spec": {
        "rules": [
            {
                "host": "shop.example.com",
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": "web-service", "port": {"number": 80}}},
                        }
                    ]
                },
            }
        ]
    },
}
FALLBACK_SERVICE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web-service", "labels": {"app.kubernetes.io/name": "shop"}},
    "spec": {
        "type": "ClusterIP",
        "selector": {"app.kubernetes.io/name": "shop"},
        "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
    },
}


def _load_one(path: Path, kind: str, fallback: dict[str, Any]) -> tuple[dict[str, Any], str]:
    if not path.is_file():
        return copy.deepcopy(fallback), "built-in copy of deploy/base"
    for doc in yaml.safe_load_all(path.read_text()):
        if isinstance(doc, dict) and doc.get("kind") == kind:
            doc.setdefault("metadata", {}).setdefault("namespace", NAMESPACE)
            return doc, str(path)
    raise ValueError(f"{path}: no {kind} object found")


def load_manifests(deploy_base: Path | None = None) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(Ingress, Service, sources): from ``deploy/base`` when present, else the built-in copies."""
    base = deploy_base or DEPLOY_BASE
    ingress, source_i = _load_one(base / "ingress.yaml", "Ingress", FALLBACK_INGRESS)
    service, source_s = _load_one(base / "service.yaml", "Service", FALLBACK_SERVICE)
    for obj in (ingress, service):
        obj.setdefault("metadata", {}).setdefault("namespace", NAMESPACE)
    return ingress, service, [source_i, source_s]


def ingress_host(ingress: dict[str, Any]) -> str:
    """The first rule's host: what the load generator puts in its Host header."""
    for rule in (ingress.get("spec") or {}).get("rules") or []:
        if rule.get("host"):
            return str(rule["host"])
    return "shop.example.com"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now on ``host`` (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def replicaset_hash(seed: str = "shop") -> str:
    """A pod-template-hash-like suffix (10 characters of [a-z0-9] in the real thing; here, hex)."""
    return hashlib.sha256(seed.encode()).hexdigest()[:10]


@dataclass
class Pod:
    """One replica: a pod with an ``app`` container on ``app_port`` and a ``db`` sidecar on ``db_port``."""

    name: str
    uid: str
    node: str
    ip: str
    app_port: int
    db_port: int
    labels: dict[str, str] = field(default_factory=lambda: dict(POD_LABELS))

    @classmethod
    def create(cls, index: int, template_hash: str, node: str) -> Pod:
        suffix = uuid.uuid5(uuid.NAMESPACE_DNS, f"{template_hash}-{index}").hex[:5]
        return cls(
            name=f"shop-{template_hash}-{suffix}",
            uid=str(uuid.uuid4()),
            node=node,
            ip="127.0.0.1",
            app_port=free_port(),
            db_port=free_port(),
        )

    def downward_env(self, container: str) -> dict[str, str]:
        """The variables the Deployment sets through the Downward API (tracekit.k8s.downward)."""
        return {
            "POD_NAME": self.name,
            "POD_NAMESPACE": NAMESPACE,
            "POD_UID": self.uid,
            "POD_IP": self.ip,
            "NODE_NAME": self.node,
            "CONTAINER_NAME": container,
        }

    def to_k8s(self) -> dict[str, Any]:
        """The pod as the API would show it; ``localPort`` is where the container port is reachable here."""
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": self.name, "namespace": NAMESPACE, "uid": self.uid, "labels": self.labels},
            "spec": {
                "nodeName": self.node,
                "containers": [
                    {
                        "name": "app",
                        "ports": [
                            {
                                "name": CONTAINER_PORT_NAME,
                                "containerPort": CONTAINER_PORT,
                                "localPort": self.app_port,
                            }
                        ],
                        "readinessProbe": {"httpGet": {"path": "/readyz", "port": CONTAINER_PORT_NAME}},
                    },
                    {"name": "db"},
                ],
            },
            "status": {"podIP": self.ip},
        }


def pod_target(pod: dict[str, Any], target_port: int | str | None) -> tuple[str, int] | None:
    """Where a Service's ``targetPort`` (number or name) reaches this pod locally, or None."""
    ip = (pod.get("status") or {}).get("podIP")
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if target_port in (port.get("name"), port.get("containerPort")):
                return str(ip), int(port["localPort"])
    return None


def write_state(
    path: Path, ingresses: list[dict[str, Any]], services: list[dict[str, Any]], pods: list[Pod]
) -> None:
    """Write the whole state atomically (readers never see half a file)."""
    state = {"ingresses": ingresses, "services": services, "pods": [p.to_k8s() for p in pods]}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, path)


def read_state(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())

"""From the cluster kit's rendered YAML to the Pod YAML ``podman kube play`` runs, changing only its gaps.

``kubectl kustomize deploy/base`` renders the objects ``kubectl apply -k`` would send; the Deployment's
pod template becomes one Pod per replica, named as its ReplicaSet would name it. The containers' image,
command, env, probes, securityContext, resources and volumes go to podman as the YAML says. Only where
podman 4.3 (Debian 12's) lacks what the kubelet does is the pod changed, each change listed in
:data:`PODMAN_GAPS` and in docs/cluster.md:

* Downward API ``fieldRef``s podman refuses (``metadata.namespace``, ``status.podIP``, ``spec.nodeName``)
  and ``metadata.uid`` (podman's value is its own pod id, known only after creation, too late for the
  ``$(VAR)`` references below) are filled in, as the kubelet would, from the pod's facts;
* ``$(VAR)`` references in env values, which podman passes through verbatim, are expanded by the
  Kubernetes rule (earlier variables of the same container; unknown references stay as written);
* ``containerPort``s are left out: podman 4.3 publishes each on the host (hostPort defaults to it), which
  a cluster never does and which makes a second replica fail on port 8080;
* ``emptyDir`` volumes get the pod's name as a prefix: podman 4.3 makes them volumes named after the
  volume, shared by every pod that uses the name, where an emptyDir belongs to one pod;
* the OTLP endpoint's host name resolves (``hostAliases``) to the demo's receiver, as the cluster's DNS
  resolves the collector's Service.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

Obj = dict[str, Any]

#: Kubernetes' alphabet for generated name suffixes and template hashes (no vowels, no 0/1/3).
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

#: Downward API fields the kubelet fills in and podman 4.3 does not (or, for metadata.uid, too late).
FILLED_FIELD_REFS = ("metadata.namespace", "metadata.uid", "status.podIP", "spec.nodeName")

_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


class ManifestError(ValueError):
    """The rendered kit lacks what the demo needs (one line naming the object or field)."""


@dataclass(frozen=True)
class Kit:
    """The rendered objects the demo plays: the workload, its routing, and its ConfigMaps."""

    deployment: Obj
    service: Obj
    ingress: Obj
    config_maps: tuple[Obj, ...]

    @property
    def namespace(self) -> str:
        return str(self.deployment["metadata"].get("namespace") or "default")

    @property
    def template(self) -> Obj:
        return self.deployment["spec"]["template"]


def kubectl_kustomize(target: Path, kubectl: str | None = None) -> list[Obj]:
    """The objects ``kubectl kustomize TARGET`` renders (what ``kubectl apply -k`` would send)."""
    import yaml

    binary = kubectl or shutil.which("kubectl")
    if binary is None:
        raise ManifestError("kubectl is not installed (needed for `kubectl kustomize`); set $KUBECTL")
    proc = subprocess.run(
        [binary, "kustomize", str(target)], capture_output=True, text=True, timeout=120, check=False
    )
    if proc.returncode != 0:
        raise ManifestError(f"kubectl kustomize {target} failed: {proc.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(proc.stdout) if isinstance(doc, dict)]


def select_kit(objects: list[Obj], deployment: str = "shop") -> Kit:
    """The Deployment ``deployment``, the Service and Ingress that route to it, and every ConfigMap."""

    def one(kind: str, name: str | None = None) -> Obj:
        found = [o for o in objects if o.get("kind") == kind and name in (None, o["metadata"].get("name"))]
        if len(found) != 1:
            raise ManifestError(f"the rendered kit has {len(found)} {kind} {name or ''} objects, expected 1")
        return found[0]

    dep = one("Deployment", deployment)
    ingress = one("Ingress")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"]
    return Kit(
        deployment=dep,
        service=one("Service", backend),
        ingress=ingress,
        config_maps=tuple(o for o in objects if o.get("kind") == "ConfigMap"),
    )


# --- names as a ReplicaSet gives them ------------------------------------------------------------


def safe_encode(text: str) -> str:
    """Kubernetes' ``rand.SafeEncodeString``: each byte to a letter of :data:`SAFE_ALPHABET`."""
    return "".join(SAFE_ALPHABET[b % len(SAFE_ALPHABET)] for b in text.encode())


def template_hash(template: Obj) -> str:
    """A ``pod-template-hash``: the template's FNV-32a, safe-encoded, as the Deployment controller makes it.

    Kubernetes hashes the Go struct's printed form, which Python cannot reproduce; the JSON form gives the
    same property: the same template always gets the same hash, a changed one a new hash.
    """
    digest = 0x811C9DC5
    for byte in json.dumps(template, sort_keys=True, separators=(",", ":")).encode():
        digest = ((digest ^ byte) * 0x01000193) & 0xFFFFFFFF
    return safe_encode(str(digest))


def pod_name(deployment: str, hash_: str, random_bytes: bytes) -> str:
    """``<deployment>-<pod-template-hash>-<5 random safe characters>``, a ReplicaSet's pod name."""
    suffix = "".join(SAFE_ALPHABET[b % len(SAFE_ALPHABET)] for b in random_bytes[:5])
    return f"{deployment}-{hash_}-{suffix}"


# --- the pod podman plays ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PodFacts:
    """What the API server and the kubelet know of a pod before its containers start."""

    name: str
    namespace: str
    uid: str
    ip: str
    node: str


def expand_refs(value: str, known: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: known names replaced, ``$$`` -> ``$``, the rest left as written."""

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return known.get(name, match.group(0))

    return _VAR_REF.sub(sub, value)


def _env_for(container: Obj, facts: PodFacts, extra_env: Mapping[str, str]) -> list[Obj]:
    values = {
        "metadata.name": facts.name,
        "metadata.namespace": facts.namespace,
        "metadata.uid": facts.uid,
        "status.podIP": facts.ip,
        "spec.nodeName": facts.node,
    }
    known: dict[str, str] = {}
    out: list[Obj] = []
    extra = dict(extra_env)
    for env in container.get("env") or []:
        env = copy.deepcopy(env)
        field_ref = (env.get("valueFrom") or {}).get("fieldRef") or {}
        path = field_ref.get("fieldPath")
        if path in FILLED_FIELD_REFS:
            env = {"name": env["name"], "value": values[path]}
        elif path == "metadata.name":
            known[env["name"]] = facts.name  # podman fills it in the same
        if env["name"] in extra:
            env = {"name": env["name"], "value": extra.pop(env["name"])}
        if "value" in env:
            env["value"] = expand_refs(str(env["value"]), known)
            known[env["name"]] = env["value"]
        out.append(env)
    out.extend({"name": k, "value": v} for k, v in extra.items())
    return out


def pod_for_podman(
    kit: Kit,
    facts: PodFacts,
    *,
    collector_ip: str,
    extra_env: Mapping[str, str] | None = None,
) -> Obj:
    """The Pod to hand to ``podman kube play``: the Deployment's template with podman's gaps filled.

    ``extra_env`` is set on every container as ``kubectl set env deployment/shop K=V`` would (the
    scenario's knobs); ``collector_ip`` is where the OTLP endpoint's host name resolves.
    """
    template = copy.deepcopy(kit.template)
    spec: Obj = template["spec"]
    prefix = f"{facts.name}-"
    for container in spec.get("containers") or []:
        container.pop("ports", None)
        container["env"] = _env_for(container, facts, extra_env or {})
        for mount in container.get("volumeMounts") or []:
            if _is_empty_dir(spec, mount["name"]):
                mount["name"] = prefix + mount["name"]
    for volume in spec.get("volumes") or []:
        if "emptyDir" in volume:
            volume["name"] = prefix + volume["name"]
    hosts = sorted(otlp_hosts(kit))
    if hosts:
        spec["hostAliases"] = [*(spec.get("hostAliases") or []), {"ip": collector_ip, "hostnames": hosts}]
    labels = dict((template.get("metadata") or {}).get("labels") or {})
    labels["pod-template-hash"] = template_hash(kit.template)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": facts.name, "namespace": facts.namespace, "labels": labels},
        "spec": spec,
    }


def _is_empty_dir(spec: Obj, name: str) -> bool:
    return any(v.get("name") == name and "emptyDir" in v for v in spec.get("volumes") or [])


def _otlp_endpoints(kit: Kit) -> set[str]:
    found = set()
    for container in kit.template["spec"].get("containers") or []:
        for env in container.get("env") or []:
            name = env.get("name")
            if name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") and env.get(
                "value"
            ):
                found.add(str(env["value"]))
    return found


def otlp_hosts(kit: Kit) -> set[str]:
    """The host names the containers export OTLP to (the collector's Service on a cluster)."""
    return {urlsplit(url).hostname or "" for url in _otlp_endpoints(kit)} - {""}


def otlp_port(kit: Kit) -> int:
    """The port the containers export OTLP to: the demo's receiver listens there."""
    ports = {urlsplit(url).port or (443 if url.startswith("https") else 80) for url in _otlp_endpoints(kit)}
    if len(ports) != 1:
        raise ManifestError(
            f"the containers' OTEL_EXPORTER_OTLP_ENDPOINT ports differ or are missing: {ports}"
        )
    return ports.pop()


def container_port(kit: Kit, name_or_number: int | str) -> int:
    """A container port of the template by name or number (a Service's ``targetPort``)."""
    for container in kit.template["spec"].get("containers") or []:
        for port in container.get("ports") or []:
            if name_or_number in (port.get("name"), port.get("containerPort")):
                return int(port["containerPort"])
    raise ManifestError(
        f"no container port {name_or_number!r} in Deployment {kit.deployment['metadata']['name']}"
    )


# --- what podman leaves out -------------------------------------------------------------------------

#: (what the pod template says, is it there?, what happens under podman instead). Listed when present.
PODMAN_GAPS: tuple[tuple[str, Callable[[Obj], bool], str], ...] = (
    (
        "readinessProbe",
        lambda s: any(c.get("readinessProbe") for c in s.get("containers") or []),
        "not run by podman; the demo's endpoints controller runs the httpGet ones (exec ones: not run)",
    ),
    (
        "livenessProbe",
        lambda s: any(c.get("livenessProbe") for c in s.get("containers") or []),
        "a podman health check that nothing schedules without systemd (named ports become port 0)",
    ),
    (
        "serviceAccountName/automountServiceAccountToken",
        lambda s: bool(s.get("serviceAccountName") or s.get("automountServiceAccountToken")),
        "no API server: no token, the library's routing attributes are absent",
    ),
    (
        "securityContext.fsGroup",
        lambda s: "fsGroup" in (s.get("securityContext") or {}),
        "ignored (the image owns /data as the user)",
    ),
    (
        "resources.requests.cpu",
        lambda s: any("cpu" in ((c.get("resources") or {}).get("requests") or {}) for c in s["containers"]),
        "ignored (limits and memory requests are applied)",
    ),
    (
        "emptyDir.sizeLimit",
        lambda s: any("sizeLimit" in (v.get("emptyDir") or {}) for v in s.get("volumes") or []),
        "not enforced",
    ),
    (
        "fieldRef " + "/".join(FILLED_FIELD_REFS),
        lambda s: _uses_field_refs(s),
        "filled in by the demo (podman refuses them)",
    ),
    (
        "$(VAR) in env",
        lambda s: any("$(" in str(e.get("value", "")) for c in s["containers"] for e in c.get("env") or []),
        "expanded by the demo (podman passes them verbatim)",
    ),
    (
        "containerPort",
        lambda s: any(c.get("ports") for c in s.get("containers") or []),
        "left out (podman would publish it on the host)",
    ),
)


def _uses_field_refs(spec: Obj) -> bool:
    for container in spec.get("containers") or []:
        for env in container.get("env") or []:
            if ((env.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath") in FILLED_FIELD_REFS:
                return True
    return False


def podman_gaps(kit: Kit) -> list[str]:
    """``field: what happens`` for each field of the pod template podman does not implement as a cluster."""
    spec = kit.template["spec"]
    return [f"{field}: {what}" for field, present, what in PODMAN_GAPS if present(spec)]

"""The demo's pods as podman runs them: the launcher's control plane and kubelet for ``--runtime podman``.

:class:`PodmanPods` is all the launcher sees: ``setup`` (network, leftovers of killed runs), ``start``
(one replica of the Deployment, played by ``podman kube play`` at a static IP of the demo's network),
``kill`` (SIGKILL to a pod's containers), ``snapshot`` (``podman pod ps`` and each container's process as
the kernel runs it), ``stop`` (graceful: SIGTERM, the containers flush their spans) and ``close`` (pods,
containers, their volumes and the network removed; images kept). ``close`` runs on every exit path: the
launcher's ``finally``, and ``atexit`` as a last resort.
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import os
import socket
import uuid
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from demo_app import cluster
from demo_app.liveness import process_alive
from demo_app.podman import manifests
from demo_app.podman.engine import (
    NETWORK_PREFIX,
    OWNER_LABEL,
    ContainerProcess,
    Podman,
    PodmanError,
    pick_subnet,
)

if TYPE_CHECKING:
    from demo_app.network import Network, PodNet

#: The first pod's host number in the demo's /24 (.1 is the gateway, where the receiver listens).
FIRST_POD_HOST = 10
#: Seconds a container gets between SIGTERM and SIGKILL (terminationGracePeriodSeconds is 30 on a
#: cluster; the shop flushes its spans in well under a second).
STOP_GRACE_S = 10

_live: weakref.WeakSet[PodmanPods] = weakref.WeakSet()


@atexit.register
def _remove_leftovers() -> None:
    for pods in list(_live):
        pods.close()


@dataclass
class PlayedPod(cluster.Pod):
    """A replica podman runs: the API's view of it carries the template's containers (probes, ports)."""

    containers: list[dict[str, Any]] = field(default_factory=list)

    def to_k8s(self) -> dict[str, Any]:
        containers = []
        for ctr in self.containers:
            ports = [{**p, "localPort": p["containerPort"]} for p in ctr.get("ports") or []]
            containers.append({**ctr, "ports": ports})
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": self.name,
                "namespace": cluster.NAMESPACE,
                "uid": self.uid,
                "labels": self.labels,
            },
            "spec": {"nodeName": self.node, "containers": containers},
            "status": {"podIP": self.ip},
        }


@dataclass
class Snapshot:
    """What podman reported during the run: ``podman pod ps`` and the containers' processes."""

    network: str = ""
    pod_ps: list[dict[str, Any]] = field(default_factory=list)
    processes: list[ContainerProcess] = field(default_factory=list)
    #: Pod name -> the address podman reports for it (its infra container's, on the demo's network).
    pod_ips: dict[str, str] = field(default_factory=dict)

    def pod_names(self) -> set[str]:
        return {str(p.get("Name")) for p in self.pod_ps}


class PodmanPods:
    """The Deployment's replicas as podman pods on a network of their own."""

    def __init__(
        self,
        kit: manifests.Kit,
        workdir: Path,
        podman: Podman | None = None,
        sources: list[str] | None = None,
        pod_network: Network | None = None,
    ) -> None:
        self.kit = kit
        self.sources = sources or []
        #: The demo's pod network (netns mode): the pods' addresses and links come from it, not podman.
        self.pod_network = pod_network
        self.workdir = workdir
        self.podman = podman or Podman()
        self.network = f"{NETWORK_PREFIX}{os.getpid()}"
        #: Every pod this run created, by name (replicas and the network's holder).
        self.subnet: ipaddress.IPv4Network | None = None
        self.pods: list[PlayedPod] = []
        self.snapshot_info = Snapshot(network=self.network)
        self._ips: dict[str, str] = {}
        self._names: set[str] = set()
        self._hash = manifests.template_hash(kit.template)
        self._closed = False

    @classmethod
    def from_kit(cls, deploy_base: Path | None, workdir: Path) -> PodmanPods:
        """The pods of ``kubectl kustomize deploy/base`` (or another kustomize directory)."""
        base = deploy_base or cluster.DEPLOY_BASE
        kit = manifests.select_kit(manifests.kubectl_kustomize(base, os.environ.get("KUBECTL")))
        return cls(kit, workdir, sources=[f"kubectl kustomize {base}"])

    def describe(self) -> str:
        """One line: where the pods run, and what of their YAML podman leaves out."""
        gaps = ", ".join(gap.split(":", 1)[0] for gap in manifests.podman_gaps(self.kit))
        where = (
            "podman sandboxes wired to the pod network"
            if self.pod_network is not None
            else f"podman network {self.network} {self.subnet}"
        )
        return (
            f"{where}; not implemented by podman kube play (docs/cluster.md): "
            f"{gaps or 'nothing this template uses'}"
        )

    # --- set-up -----------------------------------------------------------------------------------
    def setup(self) -> None:
        """Check the image, remove what killed runs left, create the pod network."""
        if os.geteuid() != 0:
            raise PodmanError("--runtime podman needs root (pods on a network with fixed addresses)")
        images = {c["image"] for c in self.kit.template["spec"]["containers"]}
        for image in sorted(images):
            if not self.podman.image_exists(image):
                raise PodmanError(f"image {image} is not in podman's store: run `make image` first")
        self.remove_orphans()
        _live.add(self)
        if self.pod_network is not None:
            return  # the pod network gives the addresses; podman's pods get loopback only
        self.subnet = pick_subnet(self.podman.used_subnets(), os.getpid())
        self.podman.create_network(self.network, self.subnet)
        self._names.add(f"{self.network}-gateway")  # removed by close() even if starting it fails
        self.podman.hold_network(self.network)

    def remove_orphans(self) -> None:
        """Pods and networks of demo runs whose process is gone (killed with SIGKILL, say)."""
        orphans = [
            str(p["Name"])
            for p in self.podman.json("pod", "ps", "--format", "json", "--filter", f"label={OWNER_LABEL}")
            if not _owner_alive((p.get("Labels") or {}).get(OWNER_LABEL))
        ]
        self.podman.remove_pods(orphans)
        for network in self.podman.networks():
            pid = network.removeprefix(NETWORK_PREFIX)
            if pid.isdigit() and (int(pid) == os.getpid() or process_alive(int(pid))):
                continue
            self.podman.remove_pods([str(p["Name"]) for p in self.podman.pods(network)])
            self.podman.remove_network(network)

    @property
    def gateway(self) -> str:
        """Where the pods reach the demo's receiver: the podman network's gateway, or the node's."""
        if self.pod_network is not None:
            from demo_app.network import plan

            return plan.NODE_GATEWAY
        assert self.subnet is not None, "setup() first"
        return str(self.subnet.network_address + 1)

    @property
    def receiver_listen(self) -> str:
        """Where the demo's receiver listens: the gateway, at the port the containers export to."""
        return f"{self.gateway}:{manifests.otlp_port(self.kit)}"

    # --- pods -------------------------------------------------------------------------------------
    def start(self, index: int, extra_env: Mapping[str, str], node: str | None = None) -> PlayedPod:
        """Play replica ``index`` with ``podman kube play`` at the next address; returns the API's view.

        ``node``: the pod network's node (netns mode) whose pod CIDR gives the address.
        """
        name = self._new_name()
        self._names.add(name)  # before play: a half-played pod is removed too
        pod_net = None
        if self.pod_network is not None:
            node = node or "node-1"
            pod_net = self.pod_network.add_pod(name, node)
            ip = pod_net.ip
        else:
            assert self.subnet is not None, "setup() first"
            ip, node = str(self.subnet.network_address + FIRST_POD_HOST + index), socket.gethostname()
        facts = manifests.PodFacts(
            name=name, namespace=self.kit.namespace, uid=str(uuid.uuid4()), ip=ip, node=node
        )
        pod = manifests.pod_for_podman(self.kit, facts, collector_ip=self.gateway, extra_env=extra_env)
        pod["metadata"]["labels"][OWNER_LABEL] = str(os.getpid())
        self.podman.play(
            pod,
            network=self.network if pod_net is None else "none",
            ip=ip if pod_net is None else None,
            config_maps=self.kit.config_maps,
            workdir=self.workdir,
        )
        actual = self._address(name, pod_net)
        if pod_net is not None:
            self.podman.add_hosts(self.containers_of(name), pod["spec"].get("hostAliases") or [])
        if actual != ip:
            raise PodmanError(f"pod {name} got address {actual}, not the {ip} it was given")
        self._ips[name] = ip
        port = manifests.container_port(self.kit, self._target_port())
        played = PlayedPod(
            name=name,
            uid=facts.uid,
            node=facts.node,
            ip=ip,
            app_port=port,
            db_port=0,
            labels={k: v for k, v in pod["metadata"]["labels"].items() if k != OWNER_LABEL},
            containers=[
                {k: v for k, v in c.items() if k in ("name", "ports", "readinessProbe")}
                for c in self.kit.template["spec"]["containers"]
            ],
        )
        self.pods.append(played)
        return played

    def _address(self, name: str, pod_net: PodNet | None) -> str | None:
        """The pod's address as the kernel has it: podman's on its network, or the wired sandbox's."""
        if pod_net is None:
            return self.podman.pod_ip(name, self.network)
        from demo_app.podman import sandbox

        pid = self.podman.sandbox_pid(name)
        sandbox.wire(pod_net, pid)
        return sandbox.address(pid)

    def _target_port(self) -> int | str:
        ports = self.kit.service["spec"].get("ports") or []
        if not ports:
            raise manifests.ManifestError(f"Service {self.kit.service['metadata']['name']} has no ports")
        return ports[0].get("targetPort", ports[0]["port"])

    def _new_name(self) -> str:
        deployment = self.kit.deployment["metadata"]["name"]
        while True:
            name = manifests.pod_name(deployment, self._hash, os.urandom(5))
            if name not in self._names:
                return name

    def containers(self, pod: cluster.Pod) -> list[str]:
        """Podman's names for the pod's containers (``<pod>-<container>``)."""
        return self.containers_of(pod.name)

    def containers_of(self, pod: str) -> list[str]:
        return [f"{pod}-{c['name']}" for c in self.kit.template["spec"]["containers"]]

    def kill(self, pod: cluster.Pod) -> list[str]:
        """SIGKILL every container of the pod (the pod stays, as a crashed one does until restarted)."""
        names = self.containers(pod)
        self.podman.kill(names)
        return names

    def exited(self, skip: set[str]) -> str | None:
        """A container that stopped though nobody killed it, with the end of its log; else None."""
        states = {c["Name"]: c for c in self.podman.inspect(*self._all_containers()) if c.get("Name")}
        for name, ctr in states.items():
            if name in skip:
                continue
            state = ctr.get("State") or {}
            if not state.get("Running"):
                return f"container {name} exited ({state.get('Status')}):\n{self.podman.logs(name)}"
        return None

    def _all_containers(self) -> list[str]:
        return [n for pod in self.pods for n in self.containers(pod)]

    def snapshot(self, skip: set[str]) -> Snapshot:
        """``podman pod ps`` now, and the process of every running container (user, capabilities)."""
        listed = self.podman.json("pod", "ps", "--format", "json")
        info = Snapshot(
            network=self.network,
            pod_ps=[p for p in listed if p.get("Name") in self._names],
            pod_ips=dict(self._ips),
        )
        for pod in self.pods:
            for ctr in self.kit.template["spec"]["containers"]:
                if f"{pod.name}-{ctr['name']}" not in skip:
                    info.processes.append(self.podman.container_process(pod.name, ctr["name"]))
        self.snapshot_info = info
        return info

    # --- shut-down --------------------------------------------------------------------------------
    def stop(self) -> None:
        """Graceful stop of every pod: SIGTERM, the containers flush their spans and exit."""
        self.podman.stop_pods([p.name for p in self.pods], STOP_GRACE_S)

    def close(self) -> None:
        """Remove every pod, container, volume and the network this run created (images are kept)."""
        if self._closed:
            return
        self._closed = True
        _live.discard(self)
        with contextlib.suppress(PodmanError, OSError):
            self.podman.remove_pods(sorted(self._names))
        if self.subnet is not None:
            with contextlib.suppress(PodmanError, OSError):
                # Pods this process played but lost track of (an error between play and bookkeeping).
                self.podman.remove_pods([str(p["Name"]) for p in self.podman.pods(self.network)])
            with contextlib.suppress(PodmanError, OSError):
                self.podman.remove_network(self.network)


def _owner_alive(label: object) -> bool:
    """Is the demo named by an owner label still running? (A label that names no pid: treated as alive.)"""
    text = str(label or "")
    return not text.isdigit() or process_alive(int(text))

"""The podman command line, as the demo uses it: one network, pods played from YAML, and their removal.

Every call goes through :class:`Podman`, which points podman at the repository's containers.conf
(``CONTAINERS_CONF``: runc, cgroupfs, rlimits below the hard limits) without touching the machine's
own configuration, and turns a failure into :class:`PodmanError` with podman's own message.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

#: The repository's podman settings (see the file for why each one).
CONTAINERS_CONF = Path(__file__).resolve().parent / "containers.conf"
#: The benchmarking range (RFC 2544): never a real network. The demo takes one /24 of it per run.
DEMO_RANGE = ipaddress.IPv4Network("198.18.0.0/15")
#: Networks the demo creates are named NETWORK_PREFIX + the pid of the process that created them.
NETWORK_PREFIX = "tracekit-demo-"
#: The label on the demo's network (and annotation on its pods): the network's name.
RUN_LABEL = "io.tracekit.demo.network"
#: The label on every pod the demo plays: the pid of the demo that played it (clean-up after a killed run).
OWNER_LABEL = "tracekit.io/demo-owner"
COMMAND_TIMEOUT_S = 120.0


class PodmanError(RuntimeError):
    """A podman command failed: its arguments and podman's own message, in one line."""


@dataclass(frozen=True)
class ContainerProcess:
    """A container's main process as the kernel sees it (read from /proc on the host)."""

    pod: str
    container: str
    uid: int
    gid: int
    cap_eff: int
    no_new_privs: bool


class Podman:
    """The podman CLI with the demo's containers.conf."""

    def __init__(self, binary: str | None = None, conf: Path | None = None) -> None:
        found = binary or shutil.which("podman")
        if found is None:
            raise PodmanError("podman is not installed (apt-get install podman runc)")
        self.binary = found
        self.env = {
            **os.environ,
            "CONTAINERS_CONF": str(conf or os.environ.get("CONTAINERS_CONF") or CONTAINERS_CONF),
        }

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        try:
            proc = subprocess.run(
                [self.binary, *args],
                input=stdin,
                capture_output=True,
                text=True,
                env=self.env,
                timeout=COMMAND_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise PodmanError(
                f"podman {' '.join(args[:2])}: no answer in {COMMAND_TIMEOUT_S:.0f} s"
            ) from None
        if check and proc.returncode != 0:
            # podman logs harmless errors (no systemd for health-check timers) before the real one.
            lines = [ln for ln in proc.stderr.splitlines() if "systemd" not in ln] or proc.stderr.splitlines()
            message = lines[-1] if lines else f"exit status {proc.returncode}"
            raise PodmanError(f"podman {' '.join(args[:2])}: {message}")
        return proc.stdout

    def json(self, *args: str) -> Any:
        out = self.run(*args).strip()
        return json.loads(out) if out else []

    # --- images ----------------------------------------------------------------------------------
    def image_exists(self, image: str) -> bool:
        proc = subprocess.run(
            [self.binary, "image", "exists", image],
            capture_output=True,
            env=self.env,
            timeout=30,
            check=False,
        )
        return proc.returncode == 0

    # --- networks --------------------------------------------------------------------------------
    def used_subnets(self) -> list[ipaddress.IPv4Network]:
        """Subnets of podman's networks and of this host's addresses (a new network must avoid them)."""
        used: list[ipaddress.IPv4Network] = []
        for net in self.json("network", "ls", "--format", "json"):
            for sub in net.get("subnets") or []:
                network = ipaddress.ip_network(sub["subnet"], strict=False)
                if isinstance(network, ipaddress.IPv4Network):
                    used.append(network)
        ip = shutil.which("ip")
        if ip is not None:
            out = subprocess.run([ip, "-j", "-4", "addr"], capture_output=True, text=True, check=False).stdout
            for link in json.loads(out or "[]"):
                for addr in link.get("addr_info") or []:
                    used.append(ipaddress.IPv4Network(f"{addr['local']}/{addr['prefixlen']}", strict=False))
        return used

    def create_network(self, name: str, subnet: ipaddress.IPv4Network) -> None:
        """A bridge network with no route out (``--internal``) and no DNS: the demo's pod network."""
        self.run(
            "network", "create", "--internal", "--disable-dns", "--subnet", str(subnet),
            "--gateway", str(subnet.network_address + 1), "--label", f"{RUN_LABEL}={name}", name,
        )  # fmt: skip

    def hold_network(self, name: str) -> str:
        """Start an empty pod on the network so that its bridge and gateway address exist on the host now.

        Podman creates a network's bridge when the first container joins it; the demo's receiver must
        listen on the gateway before any pod starts exporting. Returns the holder pod's name.
        """
        holder = f"{name}-gateway"
        owner = f"{OWNER_LABEL}={os.getpid()}"
        self.run("pod", "create", "--name", holder, "--network", name, "--label", owner)
        self.run("pod", "start", holder)
        return holder

    def networks(self, prefix: str = NETWORK_PREFIX) -> list[str]:
        return [
            n["name"] for n in self.json("network", "ls", "--format", "json") if n["name"].startswith(prefix)
        ]

    # --- pods ------------------------------------------------------------------------------------
    def play(
        self,
        pod: dict[str, Any],
        *,
        network: str,
        ip: str | None,
        config_maps: Iterable[dict[str, Any]],
        workdir: Path,
    ) -> None:
        """``podman kube play`` one Pod on ``network`` with the static ``ip`` (a CNI's address).

        ``network="none"`` (and no ip): the pod gets a network namespace with loopback only, for the
        caller to wire, as a CNI plugin wires a sandbox the runtime created.
        """
        name = pod["metadata"]["name"]
        pod_file = workdir / f"{name}.yaml"
        pod_file.write_text(yaml.safe_dump(pod, sort_keys=False))
        args = ["kube", "play", "--network", network, "--annotation", f"{RUN_LABEL}={network}"]
        if ip is not None:
            args += ["--ip", ip]
        for i, cm in enumerate(config_maps):
            cm_file = workdir / f"configmap-{i}.yaml"
            if not cm_file.exists():
                cm_file.write_text(yaml.safe_dump(cm, sort_keys=False))
            args += ["--configmap", str(cm_file)]
        self.run(*args, str(pod_file))

    def pods(self, network: str) -> list[dict[str, Any]]:
        """``podman pod ps`` for the pods on ``network``: name, id, status, containers."""
        return list(self.json("pod", "ps", "--format", "json", "--filter", f"network={network}") or [])

    def inspect(self, *names: str) -> list[dict[str, Any]]:
        return list(self.json("inspect", "--type", "container", *names) or [])

    def add_hosts(self, containers: list[str], aliases: list[dict[str, Any]]) -> None:
        """Append ``hostAliases`` to the containers' /etc/hosts, as podman does on its own networks
        (with ``--network none`` it leaves them out)."""
        lines = "".join(f"{a['ip']}\t{' '.join(a['hostnames'])}\n" for a in aliases)
        for ctr in self.inspect(*containers):
            path = ctr.get("HostsPath")
            if not path:
                raise PodmanError(f"container {ctr.get('Name')} has no /etc/hosts to add host aliases to")
            with open(path, "a", encoding="utf-8") as hosts:
                hosts.write(lines)

    def sandbox_pid(self, pod: str) -> int:
        """The pid of the pod's infra container: its network namespace is /proc/PID/ns/net."""
        info = self.json("pod", "inspect", pod)
        infra = info.get("InfraContainerID") if isinstance(info, dict) else None
        pid = int(((self.inspect(infra)[0].get("State") or {}).get("Pid") or 0) if infra else 0)
        if pid <= 0:
            raise PodmanError(f"pod {pod} has no running infra container")
        return pid

    def pod_ip(self, pod: str, network: str) -> str | None:
        """The address podman gave the pod's network namespace (its infra container) on ``network``."""
        info = self.json("pod", "inspect", pod)
        infra = info.get("InfraContainerID") if isinstance(info, dict) else None
        if not infra:
            return None
        for ctr in self.inspect(infra):
            nets = (ctr.get("NetworkSettings") or {}).get("Networks") or {}
            if network in nets:
                return str(nets[network].get("IPAddress") or "") or None
        return None

    def kill(self, containers: list[str]) -> None:
        self.run("kill", "--signal", "KILL", *containers)

    def stop_pods(self, pods: list[str], timeout_s: int) -> None:
        """SIGTERM every container (the image's stop signal), SIGKILL after ``timeout_s``."""
        if pods:
            self.run("pod", "stop", "--ignore", "--time", str(timeout_s), *pods)

    def remove_pods(self, pods: list[str]) -> None:
        """Remove the pods, their containers with their anonymous volumes, and their emptyDir volumes."""
        if not pods:
            return
        containers = [
            c["Names"] for c in self.json("ps", "-a", "--format", "json") if c.get("PodName") in pods
        ]
        volumes = {
            m["Name"]
            for ctr in (self.inspect(*containers) if containers else [])
            for m in ctr.get("Mounts") or []
            if m.get("Type") == "volume"
        }
        if containers:
            self.run("rm", "--force", "--volumes", "--ignore", "--time", "2", *containers)
        self.run("pod", "rm", "--force", "--ignore", "--time", "2", *pods)
        for volume in sorted(volumes):
            self.run("volume", "rm", "--force", volume, check=False)

    def remove_network(self, name: str) -> None:
        self.run("network", "rm", "--force", name, check=False)

    def container_process(self, pod: str, container: str) -> ContainerProcess:
        """The uid, gid, effective capabilities and no_new_privs of a container's main process."""
        [ctr] = self.inspect(f"{pod}-{container}")
        pid = int((ctr.get("State") or {}).get("Pid") or 0)
        if pid <= 0:
            raise PodmanError(f"container {pod}-{container} is not running")
        fields = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
        )
        return ContainerProcess(
            pod=pod,
            container=container,
            uid=int(fields["Uid"].split()[1]),  # effective
            gid=int(fields["Gid"].split()[1]),
            cap_eff=int(fields["CapEff"].strip(), 16),
            no_new_privs=fields.get("NoNewPrivs", "0").strip() == "1",
        )

    def logs(self, container: str, lines: int = 15) -> str:
        """The last ``lines`` of a container's output (podman 4.3's ``--tail`` can return nothing)."""
        proc = subprocess.run(
            [self.binary, "logs", container],
            capture_output=True, text=True, env=self.env, timeout=30, check=False,
        )  # fmt: skip
        return "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-lines:])


def pick_subnet(used: Iterable[ipaddress.IPv4Network], seed: int) -> ipaddress.IPv4Network:
    """A /24 of :data:`DEMO_RANGE` that overlaps none of ``used``, starting from a seed (the pid)."""
    taken = list(used)
    subnets: list[ipaddress.IPv4Network] = list(DEMO_RANGE.subnets(new_prefix=24))
    for i in range(len(subnets)):
        candidate = subnets[(seed + i) % len(subnets)]
        if not any(candidate.overlaps(t) for t in taken):
            return candidate
    raise PodmanError(f"no free /24 left in {DEMO_RANGE}")

"""Podman's pods on the demo's own pod network (``--runtime podman --network netns``).

Podman 4.3 cannot put a pod in an existing network namespace (``kube play --network ns:PATH``: "pods
presently do not support network mode path"), so the two meet the way a container runtime and a CNI
plugin do: podman creates the pod's sandbox with loopback only (``--network none``), and the pod
network (:class:`demo_app.network.Network`) wires it. ``Network.add_pod`` allocates the pod's address on
its node's pod CIDR and makes its veth; :func:`wire` moves the pod's end of that veth into the sandbox
and gives it the address and the default route. The nftables Service VIP then reaches the containers.
"""

from __future__ import annotations

import json
import subprocess

from demo_app.network import PodNet, netns, plan
from demo_app.network.netns import NetworkError

#: The pod's interface, as Network.add_pod names it (and as a CNI plugin names it in a pod).
POD_LINK = "eth0"


def _in_sandbox(pid: int) -> list[str]:
    return ["nsenter", f"--net=/proc/{pid}/ns/net", "ip"]


def wire(pod: PodNet, pid: int) -> None:
    """Move ``pod``'s interface into the sandbox of process ``pid`` and configure it there."""
    netns.run(["ip", "-n", pod.netns, "link", "set", POD_LINK, "netns", str(pid)])
    commands = [
        f"address add {pod.ip}/{plan.NODE_PREFIX} dev {POD_LINK}",
        f"link set {POD_LINK} up",
        f"route add default via {pod.gateway}",
    ]
    netns.run([*_in_sandbox(pid), "-batch", "-"], stdin="\n".join(commands) + "\n")


def address(pid: int) -> str | None:
    """The IPv4 address the sandbox of process ``pid`` has on its pod interface, as the kernel reports it."""
    proc = subprocess.run(
        [*_in_sandbox(pid), "-j", "-4", "address", "show", "dev", POD_LINK],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise NetworkError(f"ip address show in the sandbox of pid {pid}: {proc.stderr.strip()}")
    for link in json.loads(proc.stdout or "[]"):
        for addr in link.get("addr_info") or []:
            return str(addr["local"])
    return None

"""The demo's network: a node namespace with a bridge, and one namespace per pod, ingress and client.

::

    client ns (198.18.200.10) ─┐
    ingress ns (198.18.0.10)  ─┤                node ns: bridge br0 + nftables table tkdemo
    pod ns shop-…-a (198.18.1.10) ─┤── veth ──   (gateways, the LB VIP and Service DNAT, the
    pod ns shop-…-b (198.18.2.10) ─┘             OTLP receiver and the DNS server listen here)

Nothing is created in the machine's own namespace: the bridge, the routes, ``ip_forward`` and the
nftables table all live in the node namespace, which has no link to the outside, so there is no route
out of the demo's network. Deleting the namespaces deletes everything (links, addresses, qdiscs,
tables). :meth:`Network.close` does that; the next run removes what a killed run left behind.

The API other runtimes build on: :meth:`Network.add_pod` gives a pod its namespace and IP (a
container runtime can join it at :attr:`PodNet.path`), :meth:`Network.set_endpoints` says which pod
IPs are behind a Service, :meth:`Network.close` tears it all down.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from demo_app.network import netns, nft, plan
from demo_app.network.netns import NetworkError

_REPO_ROOT = Path(__file__).resolve().parent.parent.parent


@functools.cache
def netem_missing() -> bool:
    """Is this kernel built without ``sch_netem``? (Checked once, on a veth pair in a scratch namespace.)"""
    scratch = netns.ns_name("netem-check")
    try:
        netns.run(["ip", "netns", "add", scratch])
        netns.batch(scratch, ["link add t0 type veth peer name t1"])
        netns.run(["tc", "qdisc", "add", "dev", "t0", "root", "netem", "delay", "1ms"], netns=scratch)
    except NetworkError:
        return True
    finally:
        netns.delete(scratch)
    return False


BRIDGE = "br0"
#: Locally administered (02:...), 198.18 in the middle: never a real NIC's address.
BRIDGE_MAC = "02:00:c6:12:00:01"


@dataclass(frozen=True)
class PodNet:
    """A namespace on the demo's bridge: what a pod (or the ingress, or the client) gets."""

    name: str
    netns: str
    ip: str
    gateway: str
    #: The veth end on the node's side (``tc`` on it shapes traffic *to* the pod).
    host_link: str

    @property
    def path(self) -> Path:
        """The namespace file, for ``nsenter --net=``, ``podman --network ns:`` or setns(2)."""
        return netns.NETNS_DIR / self.netns


class Network:
    """Create with :meth:`start`; always :meth:`close` (also on Ctrl-C: the launcher does)."""

    def __init__(self) -> None:
        self.node_ns = netns.ns_name("node")
        self.pods: dict[str, PodNet] = {}
        self._services: dict[str, nft.ServiceRule] = {}
        self._slots: dict[str, int] = {}
        self._links = 0
        self._lock = threading.Lock()
        self._shapers: list[subprocess.Popen[str]] = []
        self.started = False
        #: Namespaces of killed earlier runs removed by :meth:`start`.
        self.leftovers: list[str] = []

    # -- life cycle --------------------------------------------------------------------------
    def start(self) -> Network:
        self.leftovers = netns.remove_leftovers()
        netns.run(["ip", "netns", "add", self.node_ns])
        self.started = True
        commands = [
            "link set lo up",
            # A fixed address: a bridge otherwise takes the lowest MAC of its ports, so a pod joining
            # later (scale-up) could change the gateway's MAC under every neighbour's ARP cache.
            f"link add {BRIDGE} address {BRIDGE_MAC} type bridge",
            *(f"address add {cidr} dev {BRIDGE}" for cidr in plan.gateways()),
            f"link set {BRIDGE} up",
            # ClusterIPs are virtual: routed to the bridge so that a Service without endpoints reaches
            # the forward hook, where the no-endpoint map rejects it (as kube-proxy does).
            f"route add {plan.SERVICE_CIDR} dev {BRIDGE}",
        ]
        netns.batch(self.node_ns, commands)
        # A router: forward between the subnets, without ICMP redirects (every subnet is on one bridge,
        # so the node would otherwise redirect each first packet, spending the ICMP rate limit).
        sysctls = [
            "net.ipv4.ip_forward=1",
            "net.ipv4.conf.all.send_redirects=0",
            f"net.ipv4.conf.{BRIDGE}.send_redirects=0",
        ]
        netns.run(["sysctl", "-qw", *sysctls], netns=self.node_ns)
        self._apply()
        return self

    def close(self) -> None:
        """Delete every namespace of this run (processes inside are killed first)."""
        for proc in self._shapers:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        self._shapers.clear()
        for pod in list(self.pods.values()):
            netns.delete(pod.netns)
        self.pods.clear()
        if self.started:
            netns.delete(self.node_ns)
            self.started = False

    def __enter__(self) -> Network:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- namespaces --------------------------------------------------------------------------
    def _attach(self, name: str, ip: str, gateway: str, role: str) -> PodNet:
        with self._lock:
            self._links += 1
            link = f"veth{self._links}"
        ns = netns.ns_name(role)
        netns.run(["ip", "netns", "add", ns])
        pod = PodNet(name, ns, ip, gateway, link)
        self.pods[name] = pod
        netns.batch(
            self.node_ns,
            [
                f"link add {link} type veth peer name eth0 netns {ns}",
                f"link set {link} master {BRIDGE}",
                f"link set {link} up",
            ],
        )
        netns.batch(
            ns,
            [
                "link set lo up",
                f"address add {ip}/{plan.NODE_PREFIX} dev eth0",
                "link set eth0 up",
                f"route add default via {gateway}",
            ],
        )
        return pod

    def add_pod(self, name: str, node: str) -> PodNet:
        """A pod's namespace on ``node``'s pod CIDR: its containers share it (and its loopback)."""
        with self._lock:
            slot = self._slots.get(node, 0)
            self._slots[node] = slot + 1
            index = sum(self._slots.values())
        return self._attach(name, plan.pod_ip(node, slot), plan.pod_gateway(node), f"pod{index}")

    def add_ingress(self, name: str = "ingress") -> PodNet:
        return self._attach(name, plan.INGRESS_IP, plan.NODE_GATEWAY, "ingress")

    def add_client(self, name: str = "client") -> PodNet:
        return self._attach(name, plan.CLIENT_IP, plan.CLIENT_GATEWAY, "client")

    # -- kube-proxy ----------------------------------------------------------------------------
    def set_endpoints(self, service: str, vip: str, port: int, endpoints: list[tuple[str, int]]) -> None:
        """Program ``vip:port`` -> a random one of ``endpoints`` (none: reject), replacing the old map."""
        with self._lock:
            self._services[service] = nft.ServiceRule(service, vip, port, tuple(sorted(endpoints)))
            self._apply()

    def endpoints(self, service: str) -> list[tuple[str, int]]:
        rule = self._services.get(service)
        return list(rule.endpoints) if rule is not None else []

    def _apply(self) -> None:
        netns.run(["nft", "-f", "-"], netns=self.node_ns, stdin=nft.script(list(self._services.values())))

    def ruleset(self) -> str:
        """The table as the kernel holds it now (``nft list table``)."""
        return netns.run(["nft", "list", "table", "ip", nft.TABLE], netns=self.node_ns)

    # -- faults --------------------------------------------------------------------------------
    def shape(self, name: str, *, delay_ms: float = 0.0, loss_pct: float = 0.0, seed: int = 1) -> str:
        """Delay and/or drop what the pod sends, as ``tc netem`` on its eth0 does. Returns how.

        With ``sch_netem`` in the kernel: ``tc qdisc replace dev eth0 root netem delay D loss L``
        in the pod's namespace. Without it: the user-space delay line
        (:mod:`demo_app.network.delayline`) on the pod's link, with the same meaning.
        """
        pod = self.pods[name]
        spec = []
        if delay_ms:
            spec += ["delay", f"{delay_ms:g}ms"]
        if loss_pct:
            spec += ["loss", f"{loss_pct:g}%"]
        # Segments no larger than the link's MTU, whichever shaper runs (a delay line forwards frames).
        # (gso_max_segs 1: the pod's TCP hands the link one segment per frame, as on a real NIC.)
        netns.run(["ip", "link", "set", "eth0", "gso_max_segs", "1"], netns=pod.netns)
        try:
            netns.run(["tc", "qdisc", "replace", "dev", "eth0", "root", "netem", *spec], netns=pod.netns)
            return "tc netem " + " ".join(spec)
        except NetworkError:
            if not netem_missing():
                raise
        to_bridge, spare = f"{pod.host_link}b", f"{pod.host_link}s"
        netns.batch(
            self.node_ns,
            [
                f"link set {pod.host_link} nomaster",
                f"link add {to_bridge} type veth peer name {spare}",
                f"link set {to_bridge} master {BRIDGE}",
                f"link set {to_bridge} up",
                f"link set {spare} up",
            ],
        )
        for link in (to_bridge, spare):  # frames towards the pod leave the node one segment each too
            netns.run(["ip", "link", "set", link, "gso_max_segs", "1"], netns=self.node_ns)
        args = ["--pod", pod.host_link, "--bridge", spare, "--delay-ms", f"{delay_ms:g}"]
        args += ["--loss", f"{loss_pct:g}", "--seed", str(seed)]
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.node_ns, sys.executable, "-m", "demo_app.network.delayline", *args],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(_REPO_ROOT)},
        )  # fmt: skip
        self._shapers.append(proc)
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise NetworkError(f"the delay line on {name}'s link did not start (exit {proc.wait()})")
        return "delay line (no sch_netem in this kernel) " + " ".join(spec)

    def unplug(self, name: str) -> None:
        """Take the pod's link down on the node's side: its IP stops answering (a node gone)."""
        netns.run(["ip", "-n", self.node_ns, "link", "set", self.pods[name].host_link, "down"])

"""The demo's pod network with real namespaces, veth links, a bridge and nftables (root on Linux)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo_app.network import Network, NetworkError, netns, nft, plan, unavailable_reason
from demo_app.network.delayline import _ones_sum, complete_checksum
from demo_app.network.dns import lookup, serving
from demo_app.network.topology import netem_missing

needs_netns = pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))

SERVE = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = sys.argv[2].encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer((sys.argv[1], 8080), H).serve_forever()
"""
FETCH = """
import collections, http.client, sys
seen = collections.Counter()
for _ in range(int(sys.argv[2])):
    try:
        c = http.client.HTTPConnection(sys.argv[1], 80, timeout=5); c.request("GET", "/")
        seen[c.getresponse().read().decode()] += 1
    except OSError as e:
        seen[type(e).__name__] += 1
print(dict(seen))
"""
WAIT_LISTENING = """
import socket, sys, time
deadline = time.monotonic() + 20
while True:
    try:
        socket.create_connection((sys.argv[1], 8080), timeout=1).close(); break
    except OSError:
        if time.monotonic() > deadline: raise
        time.sleep(0.05)
"""


def in_ns(ns: str, code: str, *args: str) -> str:
    out = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-c", code, *args],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return out.stdout.strip()


@pytest.fixture
def network() -> Iterator[Network]:
    net = Network().start()
    try:
        yield net
    finally:
        net.close()


def test_ruleset_is_kube_proxy_shaped() -> None:
    two = nft.ServiceRule(
        "shop/web-service/http", "198.19.0.10", 80, (("198.18.1.10", 8080), ("198.18.2.10", 8080))
    )
    none = nft.ServiceRule("shop/other/http", "198.19.0.11", 80)
    text = nft.ruleset([two, none])
    assert "198.19.0.10 . tcp . 80 : goto service-shop-web-service-http" in text
    assert (
        "numgen random mod 2 vmap { 0 : goto endpoint-198.18.1.10-8080, 1 : goto endpoint-198.18.2.10-8080 }"
        in text
    )
    assert "198.19.0.11 . tcp . 80 : goto reject-chain" in text
    assert "dnat to 198.18.2.10:8080" in text
    one = nft.ruleset([nft.ServiceRule("a/b/c", "198.19.0.12", 80, (("198.18.1.11", 8080),))])
    assert "numgen" not in one and "goto endpoint-198.18.1.11-8080" in one


def test_address_plan_stays_in_the_benchmarking_range() -> None:
    import ipaddress

    for address in (plan.INGRESS_IP, plan.CLIENT_IP, plan.RESOLVER_IP, plan.LOAD_BALANCER_IP, plan.CLUSTER_IP,
                    plan.pod_ip("node-1", 0), plan.pod_ip("node-9", 199)):  # fmt: skip
        assert ipaddress.ip_address(address) in plan.DEMO_RANGE
    with pytest.raises(ValueError, match=r"node-1 \.\. node-9"):
        plan.pod_ip("worker-1", 0)


@needs_netns
@pytest.mark.slow
def test_service_vip_spreads_over_ready_pods_and_rejects_without_endpoints(network: Network) -> None:
    pods = [network.add_pod("shop-a", "node-1"), network.add_pod("shop-b", "node-2")]
    ingress = network.add_ingress()
    servers = [
        subprocess.Popen(["ip", "netns", "exec", p.netns, sys.executable, "-c", SERVE, p.ip, p.name])
        for p in pods
    ]
    try:
        for p in pods:
            in_ns(ingress.netns, WAIT_LISTENING, p.ip)
        network.set_endpoints("shop/web-service/http", plan.CLUSTER_IP, 80, [(p.ip, 8080) for p in pods])
        seen = Counter(eval(in_ns(ingress.netns, FETCH, plan.CLUSTER_IP, "60")))
        assert set(seen) == {"shop-a", "shop-b"}  # random over both; P(all on one) = 2 * 2**-60
        network.set_endpoints("shop/web-service/http", plan.CLUSTER_IP, 80, [(pods[1].ip, 8080)])
        assert eval(in_ns(ingress.netns, FETCH, plan.CLUSTER_IP, "20")) == {"shop-b": 20}
        network.set_endpoints("shop/web-service/http", plan.CLUSTER_IP, 80, [])
        assert eval(in_ns(ingress.netns, FETCH, plan.CLUSTER_IP, "3")) == {"ConnectionRefusedError": 3}
        assert "reject" in network.ruleset()
    finally:
        for s in servers:
            s.kill()
            s.wait()


@needs_netns
@pytest.mark.slow
def test_no_route_out_and_nothing_left_behind() -> None:
    before_root = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    net = Network().start()
    try:
        pod = net.add_pod("shop-a", "node-1")
        how = net.shape("shop-a", delay_ms=5)
        if netem_missing():
            assert how.startswith("delay line") and len(net._shapers) == 1
        else:
            assert "netem" in netns.run(["tc", "qdisc", "show", "dev", "eth0"], netns=pod.netns)
        # No way out: the node has no uplink, so an outside address is unreachable from a pod.
        code = (
            "import socket\ntry: socket.create_connection(('192.0.2.1', 80), timeout=2)\n"
            "except OSError as e: print(type(e).__name__)"
        )
        assert in_ns(pod.netns, code) in ("OSError", "TimeoutError", "ConnectionRefusedError")
        names = {net.node_ns, pod.netns}
        assert names <= set(netns.existing())
        assert "tkdemo" not in before_root  # the table lives in the node namespace only
    finally:
        net.close()
    assert not names & set(netns.existing())
    assert subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout == before_root


@needs_netns
def test_a_killed_runs_namespaces_are_removed_and_live_ones_kept() -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])  # exits; not reaped until the end
    zombie_ns = netns.ns_name("node", owner=zombie.pid)
    deadline = time.monotonic() + 20
    while Path(f"/proc/{zombie.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    netns.run(["ip", "netns", "add", zombie_ns])
    stale = netns.ns_name("node", owner=dead.pid)
    live = netns.ns_name("node", owner=1)  # pid 1 is alive: another run's, not ours to touch
    for name in (stale, live):
        netns.run(["ip", "netns", "add", name])
    try:
        net = Network().start()
        net.close()
        assert stale in net.leftovers and live not in net.leftovers
        assert stale not in netns.existing() and live in netns.existing()
        assert zombie_ns in net.leftovers  # an owner that exited but is not reaped yet is gone too
    finally:
        zombie.wait()
        for name in (stale, live, zombie_ns):
            netns.delete(name)


@needs_netns
def test_the_gateway_keeps_its_mac_when_pods_join(network: Network) -> None:
    def bridge_mac() -> str:
        return netns.run(["cat", "/sys/class/net/br0/address"], netns=network.node_ns).strip()

    before = bridge_mac()
    for i in range(6):  # random veth MACs: one of them is very likely lower than the first ports'
        network.add_pod(f"shop-{i}", f"node-{i % 2 + 1}")
    assert bridge_mac() == before  # else every neighbour's ARP entry for the gateway goes stale


@needs_netns
def test_failures_name_the_command() -> None:
    with pytest.raises(NetworkError, match="ip netns exec tkdemo-"):
        netns.run(["true"], netns=netns.ns_name("missing"))


def test_dns_answers_the_zone_and_nxdomain_for_the_rest() -> None:
    with serving({"Shop.Example.com": "198.18.100.10"}, "127.0.0.1", 0) as server:
        assert lookup("shop.example.com", server).addresses == ("198.18.100.10",)
        missing = lookup("shop.exmaple.com", server)
        assert (missing.rcode, missing.addresses) == ("NXDOMAIN", ())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # the port is released
        s.bind(server)


def test_delay_line_completes_offloaded_checksums() -> None:
    payload = b"GET / HTTP/1.1\r\n\r\n"
    tcp = bytes.fromhex("c350005000000001000000005018ffff00000000") + payload  # csum left 0
    ip = (
        bytes.fromhex("4500")
        + (20 + len(tcp)).to_bytes(2, "big")
        + bytes.fromhex("00004000400600000a000001c6130a0a")
    )
    frame = b"\x02" * 12 + b"\x08\x00" + ip + tcp + b"\0" * 4  # Ethernet padding after the packet
    fixed = complete_checksum(frame)
    segment = fixed[34 : 34 + len(tcp)]
    pseudo = ip[12:20] + bytes([0, 6]) + len(tcp).to_bytes(2, "big")
    assert segment[16:18] != b"\0\0" and _ones_sum(pseudo + segment) == 0xFFFF  # what the receiver checks
    assert fixed[:34] == frame[:34] and fixed[34 + len(tcp) :] == frame[34 + len(tcp) :]
    arp = b"\xff" * 12 + b"\x08\x06" + b"\0" * 28
    assert complete_checksum(arp) == arp

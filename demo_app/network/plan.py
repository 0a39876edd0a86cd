"""The demo network's address plan: every address comes from 198.18.0.0/15.

198.18.0.0/15 is reserved for benchmarking network devices (RFC 2544, RFC 6815): it is never routed
on the Internet, so nothing here can collide with a real network. The plan mirrors a small cluster:

==================  ========================  =====================================================
what                address                   why
==================  ========================  =====================================================
node network        198.18.0.0/24             the node (gateway, OTLP receiver) .1, ingress pod .10
pods of node-N      198.18.N.0/24             one pod CIDR per node, as the node IPAM hands out
client network      198.18.200.0/24           "the Internet": the client .10, its resolver .53
load balancer VIP   198.18.100.10             the public address of the ingress (a cloud LB/MetalLB)
Service CIDR        198.19.0.0/16             ClusterIPs; web-service is 198.19.0.10
==================  ========================  =====================================================

The ingress sits in a different subnet from the pods on purpose: a pod's answer to a DNAT'd
connection must cross the node's IP layer to be un-NATed. On a cluster the bridge netfilter
module (br_netfilter, a kube-proxy requirement) does that for same-subnet peers; here it would mean
changing a machine-wide setting, which the demo never does.
"""

from __future__ import annotations

import ipaddress

DEMO_RANGE = ipaddress.ip_network("198.18.0.0/15")
NODE_GATEWAY = "198.18.0.1"
NODE_PREFIX = 24
INGRESS_IP = "198.18.0.10"
CLIENT_GATEWAY = "198.18.200.1"
CLIENT_IP = "198.18.200.10"
RESOLVER_IP = "198.18.200.53"
LOAD_BALANCER_IP = "198.18.100.10"
SERVICE_CIDR = "198.19.0.0/16"
CLUSTER_IP = "198.19.0.10"
#: Pod CIDRs: node-1 .. node-MAX_NODES.
MAX_NODES = 9
PODS_PER_NODE = 200


def node_index(node: str) -> int:
    """``node-3`` -> 3 (the demo's nodes are ``node-1``, ``node-2``...)."""
    prefix, _, number = node.rpartition("-")
    if prefix != "node" or not number.isdigit() or not 1 <= int(number) <= MAX_NODES:
        raise ValueError(f"node {node!r}: the demo's nodes are node-1 .. node-{MAX_NODES}")
    return int(number)


def pod_gateway(node: str) -> str:
    return f"198.18.{node_index(node)}.1"


def pod_ip(node: str, slot: int) -> str:
    """The ``slot``-th pod address of ``node``'s pod CIDR (.10 upwards)."""
    if not 0 <= slot < PODS_PER_NODE:
        raise ValueError(f"pod slot {slot} out of range (0..{PODS_PER_NODE - 1})")
    return f"198.18.{node_index(node)}.{10 + slot}"


def gateways() -> list[str]:
    """Every address the node's bridge carries (with its prefix)."""
    nodes = [f"198.18.{n}.1/{NODE_PREFIX}" for n in range(1, MAX_NODES + 1)]
    return [
        f"{NODE_GATEWAY}/{NODE_PREFIX}",
        *nodes,
        f"{CLIENT_GATEWAY}/{NODE_PREFIX}",
        f"{RESOLVER_IP}/{NODE_PREFIX}",
    ]

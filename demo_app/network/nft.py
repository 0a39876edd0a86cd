"""The node's nftables ruleset, written the way kube-proxy's nftables mode writes it.

kube-proxy (``--proxy-mode=nftables``) keeps one table with a verdict map from
``ClusterIP . protocol . port`` to a per-Service chain; that chain picks an endpoint with
``numgen random mod N`` and jumps to a per-endpoint chain that DNATs to the pod. A Service without
ready endpoints is in a second map whose verdict rejects the connection (the client sees "connection
refused" at once rather than a timeout; a TCP reset here, because the ICMP answer kube-proxy sends is
rate-limited per host). A LoadBalancer address is one more entry in the first map, DNAT'd to the
ingress controller.

:func:`ruleset` is a pure function of the Services; :func:`script` wraps it so that ``nft -f`` replaces
the whole table in one transaction (no packet ever sees half a ruleset).
"""

from __future__ import annotations

from dataclasses import dataclass, field

TABLE = "tkdemo"


@dataclass(frozen=True)
class ServiceRule:
    """One Service port: its virtual address and the endpoints (pod ip, port) behind it."""

    name: str  # namespace/name/port-name, as kube-proxy names its chains
    vip: str
    port: int
    endpoints: tuple[tuple[str, int], ...] = field(default_factory=tuple)
    protocol: str = "tcp"

    @property
    def chain(self) -> str:
        return "service-" + self.name.replace("/", "-")


def _endpoint_chain(ip: str, port: int) -> str:
    return f"endpoint-{ip}-{port}"


def ruleset(services: list[ServiceRule]) -> str:
    """The table's definition (nft syntax) for these Services."""
    active = [s for s in services if s.endpoints]
    empty = [s for s in services if not s.endpoints]
    out = [f"table ip {TABLE} {{"]

    def vmap(name: str, entries: list[str]) -> None:
        out.append(f"  map {name} {{")
        out.append("    type ipv4_addr . inet_proto . inet_service : verdict")
        if entries:
            out.append(f"    elements = {{ {', '.join(entries)} }}")
        out.append("  }")

    vmap("service-ips", [f"{s.vip} . {s.protocol} . {s.port} : goto {s.chain}" for s in active])
    vmap("no-endpoint-services", [f"{s.vip} . {s.protocol} . {s.port} : goto reject-chain" for s in empty])
    out += [
        "  chain nat-prerouting {",
        "    type nat hook prerouting priority dstnat; policy accept;",
        "    ip daddr . meta l4proto . th dport vmap @service-ips",
        "  }",
        "  chain filter-forward {",
        "    type filter hook forward priority filter; policy accept;",
        "    ip daddr . meta l4proto . th dport vmap @no-endpoint-services",
        "  }",
        "  chain reject-chain {",
        "    counter reject with tcp reset",
        "  }",
    ]
    endpoints: set[tuple[str, int]] = set()
    for s in active:
        if len(s.endpoints) == 1:
            pick = f"goto {_endpoint_chain(*s.endpoints[0])}"
        else:
            choices = ", ".join(f"{i} : goto {_endpoint_chain(*ep)}" for i, ep in enumerate(s.endpoints))
            pick = f"numgen random mod {len(s.endpoints)} vmap {{ {choices} }}"
        out += [f"  chain {s.chain} {{", f"    {pick}", "  }"]
        endpoints.update(s.endpoints)
    for ip, port in sorted(endpoints):
        out += [f"  chain {_endpoint_chain(ip, port)} {{", f"    meta l4proto tcp dnat to {ip}:{port}", "  }"]
    out.append("}")
    return "\n".join(out) + "\n"


def script(services: list[ServiceRule]) -> str:
    """Replace the table atomically: declare (so the delete cannot fail), delete, define."""
    return f"table ip {TABLE}\ndelete table ip {TABLE}\n{ruleset(services)}"

"""The demo's pod network on one machine: namespaces, a bridge, kube-proxy-style nftables, DNS.

- :mod:`~demo_app.network.plan`: the address plan (all in 198.18.0.0/15);
- :mod:`~demo_app.network.netns`: named namespaces, entering one from a thread, leftovers;
- :mod:`~demo_app.network.nft`: the Service and load-balancer rules, as kube-proxy writes them;
- :mod:`~demo_app.network.topology`: :class:`Network`, the small API the launcher (and any container
  runtime) uses: ``add_pod`` -> a namespace and IP, ``set_endpoints`` -> the Service map, ``close``;
- :mod:`~demo_app.network.dns`: the authoritative DNS server the client resolves the shop through.
"""

from demo_app.network.netns import NetworkError, unavailable_reason
from demo_app.network.topology import Network, PodNet

__all__ = ["Network", "NetworkError", "PodNet", "unavailable_reason"]

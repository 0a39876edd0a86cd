"""The shop's DNS: an authoritative server (dnslib) and the lookup the client makes through it.

On the way to a cluster, the first hop is not HTTP: the client resolves ``shop.example.com`` to the
load balancer's address. The demo's server answers for the names it is given (A records) and says
NXDOMAIN for every other name, as an authoritative server does for a record that was never created
(the ``dns-failure`` scenario: the record is missing).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from dnslib import QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer

#: Seconds a client may cache an answer; short, as for a load balancer's record.
TTL = 30


class ZoneResolver(BaseResolver):
    """A records for the names in ``zone``; NXDOMAIN (authoritative) for the rest."""

    def __init__(self, zone: dict[str, str]) -> None:
        self.zone = {name.lower().rstrip("."): ip for name, ip in zone.items()}

    def resolve(self, request: DNSRecord, handler: object) -> DNSRecord:
        reply = request.reply()  # aa=1: we are the zone's server
        name = str(request.q.qname).lower().rstrip(".")
        ip = self.zone.get(name)
        if ip is None:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype in (QTYPE.A, QTYPE.ANY):
            reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(ip), ttl=TTL))
        return reply


class _QuietLogger(DNSLogger):
    """dnslib logs every packet to stdout by default; the demo's spans say what happened."""

    def __init__(self) -> None:
        super().__init__(log="-request,-reply,-truncated,-error,-recv,-send,-data")


@contextlib.contextmanager
def serving(zone: dict[str, str], address: str, port: int = 53) -> Iterator[tuple[str, int]]:
    """Serve ``zone`` over UDP on ``address:port`` (0: a free port) from a thread; yields where."""
    server = DNSServer(ZoneResolver(zone), address=address, port=port, logger=_QuietLogger())
    server.start_thread()
    try:
        host, bound = server.server.server_address[:2]
        yield str(host), int(bound)
    finally:
        server.stop()
        server.server.server_close()


@dataclass(frozen=True)
class Answer:
    rcode: str
    addresses: tuple[str, ...]


def lookup(name: str, server: tuple[str, int], timeout: float = 2.0) -> Answer:
    """Ask ``server`` for ``name``'s A records (one UDP exchange; raises OSError on a timeout)."""
    query = DNSRecord.question(name, "A")
    reply = DNSRecord.parse(query.send(server[0], server[1], timeout=timeout))
    addresses = tuple(str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A)
    return Answer(RCODE.get(reply.header.rcode), addresses)

"""A user-space delay line on a pod's link, for kernels built without ``sch_netem``.

``tc netem`` is how delay and loss are injected on a Linux link, but netem is a kernel option and
some kernels (minimal VM kernels among them) are built without it. Then the pod's veth is taken off
the bridge and this process carries its Ethernet frames between the veth's node end and a second
veth pair whose other end is the bridge port, holding each frame the pod sends for ``--delay-ms``
and dropping ``--loss`` percent of them, as ``netem delay D loss L`` on the pod's eth0 would. Frames
keep their order (one FIFO per direction, constant delay), like netem without jitter.

Run inside the node namespace: ``python -m demo_app.network.delayline --pod vethA --bridge vethB
--delay-ms 40 [--loss 0] [--seed 1]``. It prints ``ready`` once both sockets are bound.
"""

from __future__ import annotations

import argparse
import array
import contextlib
import os
import random
import select
import signal
import socket
import sys
import time
from collections import deque

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SOL_PACKET = 263
PACKET_AUXDATA = 8
TP_STATUS_CSUMNOTREADY = 1 << 3
MAX_FRAME = 65536
#: Where the checksum sits in a TCP and a UDP header.
_CSUM_AT = {6: 16, 17: 6}


def _open(ifname: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    sock.bind((ifname, 0))
    sock.setblocking(False)
    return sock


def _ones_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    words = array.array("H", data)
    if sys.byteorder == "little":
        words.byteswap()
    total = sum(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def complete_checksum(frame: bytes) -> bytes:
    """Fill in the TCP/UDP checksum of an IPv4 frame the sender left to the NIC (checksum offload).

    Between two veths the kernel never computes it (both ends trust the skb's "partial" mark); a
    frame read from a packet socket and sent again has lost that mark, so the receiver would drop it.
    """
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return frame
    ihl = (frame[14] & 0x0F) * 4
    proto = frame[23]
    at = _CSUM_AT.get(proto)
    total_len = int.from_bytes(frame[16:18], "big")
    start = 14 + ihl
    end = 14 + total_len
    if at is None or end > len(frame) or start + at + 2 > end:
        return frame
    segment = bytearray(frame[start:end])
    segment[at : at + 2] = b"\0\0"
    pseudo = frame[26:34] + bytes([0, proto]) + (end - start).to_bytes(2, "big")
    csum = (~_ones_sum(pseudo + bytes(segment))) & 0xFFFF
    if proto == 17 and csum == 0:
        csum = 0xFFFF
    segment[at : at + 2] = csum.to_bytes(2, "big")
    return frame[:start] + bytes(segment) + frame[end:]


def _receive(sock: socket.socket) -> tuple[bytes, int] | None:
    """One frame and its packet type, with its checksum completed; None when nothing is waiting."""
    try:
        frame, ancillary, _flags, address = sock.recvmsg(MAX_FRAME, socket.CMSG_SPACE(20))
    except BlockingIOError:
        return None
    for level, kind, data in ancillary:
        status = int.from_bytes(data[0:4], sys.byteorder)
        if level == SOL_PACKET and kind == PACKET_AUXDATA and status & TP_STATUS_CSUMNOTREADY:
            frame = complete_checksum(frame)
    return frame, address[2]


def run(pod_if: str, bridge_if: str, delay_s: float, loss: float, seed: int) -> None:
    rng = random.Random(seed)
    pod, bridge = _open(pod_if), _open(bridge_if)
    #: Frames the pod sent, due at (monotonic time): they wait; frames to the pod pass at once.
    queue: deque[tuple[float, bytes]] = deque()
    print("ready", flush=True)
    while True:
        timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else None
        readable, _, _ = select.select([pod, bridge], [], [], timeout)
        for sock in readable:
            while True:
                got = _receive(sock)
                if got is None:
                    break
                frame, pkttype = got
                if pkttype == PACKET_OUTGOING:  # our own transmissions, seen by the packet socket
                    continue
                if sock is pod:
                    if loss and rng.random() * 100.0 < loss:
                        continue
                    queue.append((time.monotonic() + delay_s, frame))
                else:
                    pod.send(frame)
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            bridge.send(queue.popleft()[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m demo_app.network.delayline", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--pod", required=True, help="the node end of the pod's veth")
    parser.add_argument("--bridge", required=True, help="the unbridged end of the veth pair on the bridge")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--loss", type=float, default=0.0, help="percent of the pod's frames dropped")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # netem runs in the kernel's softirq, ahead of every process; a real-time priority is the closest a
    # process gets, so that a busy machine does not add its scheduling delay to the injected one.
    with contextlib.suppress(OSError):
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    with contextlib.suppress(KeyboardInterrupt):
        run(args.pod, args.bridge, args.delay_ms / 1000.0, args.loss, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Readiness probes as the kubelet runs them: one timer per pod, from the node's network.

In the network-namespace demo nobody in the request path probes the pods (the ingress connects to the
Service's ClusterIP and kube-proxy's rules pick the pod), so the launcher plays the kubelet: one thread
per pod, in the node's namespace, runs the pod's ``httpGet`` probe every ``period`` seconds and reports
each change (Ready after one success, not Ready after ``failure_threshold`` failures in a row: the
same numbers as the loopback ingress's probes, see docs/demo.md).
"""

from __future__ import annotations

import contextlib
import http.client
import threading
from collections.abc import Callable
from dataclasses import dataclass

from demo_app.network import netns


@dataclass(frozen=True)
class ProbeTarget:
    pod: str
    ip: str
    port: int
    path: str = "/readyz"


class Prober:
    def __init__(
        self,
        on_change: Callable[[str, bool], None],
        *,
        node_ns: str | None,
        period: float = 0.1,
        timeout: float = 1.0,
        failure_threshold: int = 2,
    ) -> None:
        self.on_change = on_change
        self.node_ns = node_ns
        self.period, self.timeout, self.failure_threshold = period, timeout, failure_threshold
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def add(self, target: ProbeTarget) -> None:
        thread = threading.Thread(target=self._run, args=(target,), name=f"probe-{target.pod}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 1.0)

    def probe(self, target: ProbeTarget) -> bool:
        conn = http.client.HTTPConnection(target.ip, target.port, timeout=self.timeout)
        try:
            conn.request("GET", target.path, headers={"User-Agent": "kube-probe/1.31"})
            return 200 <= conn.getresponse().status < 400
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def _run(self, target: ProbeTarget) -> None:
        where = netns.entered(self.node_ns) if self.node_ns else contextlib.nullcontext()
        with where:
            ready, failures = False, 0
            while not self._stop.is_set():
                ok = self.probe(target)
                failures = 0 if ok else failures + 1
                now = ok or (ready and failures < self.failure_threshold)
                if now != ready and not self._stop.is_set():
                    ready = now
                    self.on_change(target.pod, now)
                self._stop.wait(self.period)

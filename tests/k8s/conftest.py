"""Fixtures: a fake Kubernetes API on loopback and the environment that points the library at it."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.k8s import fakeapi
from tracekit.k8s import metadata


def seed(api: fakeapi.FakeKubeApi) -> None:
    """The demo's shape: Deployment shop -> ReplicaSet -> pod shop-1, Service web-service, Ingress shop."""
    labels = {"app.kubernetes.io/name": "shop", "pod-template-hash": "abc"}
    api.put("pods", fakeapi.pod("shop-1", labels, ("ReplicaSet", "shop-abc")))
    api.put("replicasets", fakeapi.replicaset("shop-abc", "shop"))
    api.put("services", fakeapi.service("web-service", {"app.kubernetes.io/name": "shop"}))
    api.put(
        "ingresses",
        fakeapi.ingress("shop", [fakeapi.rule("shop.example.com", ("/", "Prefix", "web-service"))]),
    )


@pytest.fixture
def kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[fakeapi.FakeKubeApi]:
    """A started fake API (empty) plus env: TRACEKIT_K8S=kubeconfig, POD_NAME=shop-1, POD_NAMESPACE=shop."""
    api = fakeapi.FakeKubeApi(watch_cap=5).start()
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("TRACEKIT_K8S", "kubeconfig")
    monkeypatch.setenv("TRACEKIT_K8S_TIMEOUT", "3")
    monkeypatch.setenv("POD_NAME", "shop-1")
    monkeypatch.setenv("POD_NAMESPACE", "shop")
    monkeypatch.setenv("CONTAINER_NAME", "app")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    metadata.clear_cache()
    yield api
    api.stop()
    metadata.clear_cache()


@pytest.fixture
def dead_port() -> int:
    """A loopback port nobody listens on (bound then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def blackhole() -> Iterator[tuple[str, threading.Event]]:
    """A 'collector' that accepts connections and never answers: exports hang until their timeout."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    connected = threading.Event()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            held.append(conn)
            connected.set()

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}", connected
    stop.set()
    t.join(2)
    for c in held:
        c.close()
    srv.close()

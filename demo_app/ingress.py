"""The local ingress hop: routes by the Ingress and Service objects, proxies to ready pod replicas.

It plays an ingress controller plus kube-proxy on one machine, with their semantics:

* the Ingress rules pick the Service (``tracekit.k8s.routing.resolve_ingress``: host, then path with
  Exact/Prefix and longest-match rules); no rule -> **404** from the ingress itself, no upstream call;
* the Service's selector picks the pods (``service_selects``) and its ``targetPort`` the container port;
  only pods whose readiness probe (``GET /readyz``) passes are endpoints, as in an EndpointSlice; none
  ready -> **503**;
* requests go round-robin over the ready endpoints; a refused or dropped connection -> **502**, an
  upstream timeout -> **504** (no retry on another endpoint: the failure stays visible).

With ``--upstream service`` (the network-namespace demo) the ingress does not pick a pod: it connects
to the Service's ClusterIP and the node's nftables rules pick a ready endpoint, as kube-proxy's do
(ingress-nginx does the same with its ``service-upstream`` annotation); it neither probes pods nor
answers 503 itself, since the kernel rejects a connection to a Service without endpoints.

Each request makes a SERVER span and, when it goes upstream, a CLIENT span, both with service.name
``ingress`` and ``tracekit.component=ingress``; the W3C trace context is taken from the client and
passed to the pod, as Traefik's or ingress-nginx's OpenTelemetry support does.

Run as ``python -m demo_app.ingress --state FILE [--listen 127.0.0.1:0]``: it prints JSON events on
stdout (``listening``, ``ready``, ``not_ready``) for the launcher to follow.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from demo_app import telemetry
from demo_app.cluster import pod_target, read_state
from demo_app.knobs import Knobs
from tracekit import attributes as a
from tracekit.k8s.routing import RouteMatch, normalize_host, resolve_ingress, service_selects
from tracekit.tracing.redact import query_keys_from_env, redact_url

HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
     "transfer-encoding", "upgrade", "proxy-connection", "host", "content-length"}
)  # fmt: skip
UPSTREAM_TIMEOUT_S = 10.0
#: The query keys whose values the library redacts (``TRACEKIT_REDACT_QUERY_KEYS``): the ingress
#: records the URL it forwards to by the same rule.
QUERY_KEYS = query_keys_from_env()

#: What the ingress answers: status, body, headers (None: a plain-text answer of its own).
Answer = tuple[int, bytes, list[tuple[str, str]] | None]

_print_lock = threading.Lock()


def emit(event: str, **fields: Any) -> None:
    """One JSON event line on stdout for the launcher."""
    with _print_lock:
        sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
        sys.stdout.flush()


class Endpoints:
    """The routing state (watched file) and the ready endpoints (probed), shared by request threads."""

    def __init__(
        self,
        state_path: Path,
        probe_period: float = 0.1,
        probe_timeout: float = 1.0,
        failure_threshold: int = 2,
    ) -> None:
        self.state_path = state_path
        #: The kubelet's periodSeconds, timeoutSeconds and failureThreshold, scaled down for a demo:
        #: a pod leaves the endpoints after ``failure_threshold`` failed probes in a row (one failure
        #: on a busy machine must not flap a healthy pod), and joins them after one success.
        self.probe_period = probe_period
        self.probe_timeout = probe_timeout
        self.failure_threshold = failure_threshold
        self._failures: dict[str, int] = {}
        #: False when kube-proxy's rules pick the pod: the state is still watched, no pod is probed.
        self.probing = True
        self._lock = threading.Lock()
        self._mtime = 0.0
        self._state: dict[str, Any] = {"ingresses": [], "services": [], "pods": []}
        self._ready: set[str] = set()
        self._rr = itertools.count()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="endpoints", daemon=True)

    def start(self) -> None:
        self._reload()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2.0)

    def _reload(self) -> None:
        try:
            mtime = self.state_path.stat().st_mtime_ns
        except FileNotFoundError:
            return
        if mtime == self._mtime:
            return
        state = read_state(self.state_path)
        with self._lock:
            self._mtime = mtime
            self._state = state
            names = {p["metadata"]["name"] for p in state.get("pods", [])}
            for gone in self._ready - names:
                emit("not_ready", pod=gone, reason="deleted")
            self._ready &= names

    def _probe(self, pod: dict[str, Any]) -> bool:
        """An httpGet readiness probe on the app container, as the kubelet runs it."""
        container = next((c for c in pod["spec"]["containers"] if c.get("readinessProbe")), None)
        if container is None:
            return True
        probe = container["readinessProbe"]["httpGet"]
        target = pod_target(pod, probe["port"])
        if target is None:
            return False
        conn = http.client.HTTPConnection(*target, timeout=self.probe_timeout)
        try:
            conn.request("GET", probe["path"], headers={"User-Agent": "kube-probe/1.31"})
            return 200 <= conn.getresponse().status < 400
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._reload()
            with self._lock:
                pods = list(self._state.get("pods", [])) if self.probing else []
            for pod in pods:
                name = pod["metadata"]["name"]
                ok = self._probe(pod)
                failures = 0 if ok else self._failures.get(name, 0) + 1
                self._failures[name] = failures
                with self._lock:
                    was = name in self._ready
                    now = ok or (was and failures < self.failure_threshold)
                    if now:
                        self._ready.add(name)
                    else:
                        self._ready.discard(name)
                if now != was:
                    emit("ready" if now else "not_ready", pod=name, reason="probe")
            self._stop.wait(self.probe_period)

    def ingresses(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._state.get("ingresses", []))

    def service(self, namespace: str | None, name: str | None) -> dict[str, Any] | None:
        with self._lock:
            for svc in self._state.get("services", []):
                meta = svc.get("metadata") or {}
                if meta.get("name") == name and meta.get("namespace", namespace) == namespace:
                    return svc
        return None

    def pick(self, service: dict[str, Any], service_port: int | str | None) -> tuple[str, str, int] | None:
        """Round-robin over the ready endpoints of ``service``: (pod name, ip, port), or None."""
        target_port: int | str | None = service_port
        for port in (service.get("spec") or {}).get("ports") or []:
            if service_port in (port.get("port"), port.get("name")):
                target_port = port.get("targetPort", port.get("port"))
                break
        with self._lock:
            ready = [
                p
                for p in self._state.get("pods", [])
                if p["metadata"]["name"] in self._ready
                and service_selects(service, p["metadata"].get("labels") or {})
            ]
        endpoints = []
        for pod in sorted(ready, key=lambda p: p["metadata"]["name"]):
            target = pod_target(pod, target_port)
            if target is not None:
                endpoints.append((pod["metadata"]["name"], *target))
        if not endpoints:
            return None
        return endpoints[next(self._rr) % len(endpoints)]


def route_attributes(match: RouteMatch) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        a.ROUTE_MATCHED: True,
        a.INGRESS_NAME: match.name,
        a.INGRESS_DEFAULT_BACKEND: match.default_backend,
    }
    optional = {
        a.INGRESS_RULE_HOST: match.host,
        a.INGRESS_RULE_PATH: match.path,
        a.INGRESS_RULE_PATH_TYPE: match.path_type,
        a.INGRESS_CLASS: match.ingress_class,
        a.BACKEND_SERVICE_NAME: match.service_name,
        a.BACKEND_SERVICE_PORT: match.service_port,
    }
    attrs.update({k: v for k, v in optional.items() if v is not None})
    return attrs


class IngressServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    endpoints: Endpoints
    knobs: Knobs
    #: Connect to the Service's ClusterIP (kube-proxy picks the pod) instead of a pod.
    via_service: bool = False


class IngressHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: with Nagle's algorithm on, the body can wait for
    # the client's delayed ACK (40 ms on Linux), which would show up as "edge" time. Proxies set
    # TCP_NODELAY for this reason.
    disable_nagle_algorithm = True
    server: IngressServer
    server_version = "tracekit-ingress"
    tracer = trace.get_tracer("demo_app.ingress")

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _reply(self, status: int, body: bytes, headers: list[tuple[str, str]] | None = None) -> None:
        self.send_response(status)
        for key, value in headers or [("Content-Type", "text/plain; charset=utf-8")]:
            if key.lower() not in HOP_BY_HOP and key.lower() not in ("server", "date"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        host = normalize_host(self.headers.get("Host"))
        path = urlsplit(self.path).path or "/"
        method = self.command
        parent = propagate.extract(dict(self.headers.items()))
        attrs: dict[str, Any] = {
            a.COMPONENT: "ingress",
            "http.request.method": method,
            "url.path": path,
            "url.scheme": "http",
            "server.address": host,
            "client.address": self.client_address[0],
            "network.protocol.version": "1.1",
        }
        if self.headers.get("User-Agent"):
            attrs["user_agent.original"] = self.headers["User-Agent"]
        # The span ends before the answer is written: the client's span must not end first (which
        # an analyzer would take for clock skew); writing the bytes is the client's wait, not ours.
        with self.tracer.start_as_current_span(
            method, context=parent, kind=SpanKind.SERVER, attributes=attrs, end_on_exit=True
        ) as span:
            answer = self._route(span, method, host, path, body)
        self._reply(*answer)

    def _route(self, span: trace.Span, method: str, host: str, path: str, body: bytes) -> Answer:
        delay = self.server.knobs.ingress_delay_ms
        if delay:
            time.sleep(delay / 1000.0)
        endpoints = self.server.endpoints
        match = resolve_ingress(endpoints.ingresses(), host, path)
        if match is None or match.service_name is None:
            span.set_attribute(a.ROUTE_MATCHED, False)
            return self._refuse(span, 404, f"no Ingress rule matches host {host!r} path {path!r}")
        # Named after the matched rule path, but no http.route: the request's route is the app's
        # (an analyzer grouping by route should see /products/<id>, not the catch-all rule "/").
        span.update_name(f"{method} {match.path or '/'}")
        span.set_attributes(route_attributes(match))
        service = endpoints.service(match.namespace, match.service_name)
        if service is None:
            return self._refuse(span, 503, f"Service {match.service_name!r} not found")
        spec = service.get("spec") or {}
        service_port = next(
            (
                p.get("port")
                for p in spec.get("ports") or ()
                if match.service_port in (p.get("port"), p.get("name"))
            ),
            None,
        )
        picked: tuple[str, str, int] | None
        if self.server.via_service and spec.get("clusterIP") and service_port is not None:
            picked = ("", str(spec["clusterIP"]), int(service_port))
        else:
            picked = endpoints.pick(service, match.service_port)
        if picked is None:
            return self._refuse(span, 503, f"Service {match.service_name!r} has no ready endpoints")
        status, headers, payload = self._upstream(method, body, picked, match)
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        return status, payload, headers

    @staticmethod
    def _refuse(span: trace.Span, status: int, reason: str) -> Answer:
        """The ingress answers by itself (no upstream call): its own decision, so its span is in error."""
        span.set_attribute("http.response.status_code", status)
        span.set_status(Status(StatusCode.ERROR, reason))
        return status, f"{status} {http.client.responses[status]}: {reason}\n".encode(), None

    def _upstream(
        self, method: str, body: bytes, picked: tuple[str, str, int], match: RouteMatch
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        _pod, ip, port = picked
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["X-Forwarded-For"] = self.client_address[0]
        headers["X-Forwarded-Host"] = self.headers.get("Host", "")
        headers["X-Forwarded-Proto"] = "http"
        attrs: dict[str, Any] = {
            a.COMPONENT: "ingress",
            "http.request.method": method,
            "url.full": redact_url(f"http://{ip}:{port}{self.path}", QUERY_KEYS),
            "server.address": ip,
            "server.port": port,
            "network.peer.address": ip,
            "network.peer.port": port,
        }
        if match.service_name:
            attrs[a.BACKEND_SERVICE_NAME] = match.service_name
        with self.tracer.start_as_current_span(method, kind=SpanKind.CLIENT, attributes=attrs) as span:
            propagate.inject(headers)
            conn = http.client.HTTPConnection(ip, port, timeout=UPSTREAM_TIMEOUT_S)
            try:
                conn.request(method, self.path, body=body or None, headers=headers)
                response = conn.getresponse()
                payload = response.read()
            except TimeoutError as exc:
                return self._upstream_failed(span, exc, 504, "upstream timed out")
            except (OSError, http.client.HTTPException) as exc:
                return self._upstream_failed(span, exc, 502, "upstream connection failed")
            finally:
                conn.close()
            span.set_attribute("http.response.status_code", response.status)
            if response.status >= 400:
                span.set_status(Status(StatusCode.ERROR))
            return response.status, response.getheaders(), payload

    @staticmethod
    def _upstream_failed(
        span: trace.Span, exc: BaseException, status: int, what: str
    ) -> tuple[int, list, bytes]:
        span.record_exception(exc)
        span.set_attribute("error.type", type(exc).__name__)
        span.set_status(Status(StatusCode.ERROR, f"{what}: {exc}"))
        return status, [("Content-Type", "text/plain; charset=utf-8")], f"{status} {what}\n".encode()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo_app.ingress", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--state", type=Path, required=True, help="cluster state file written by the launcher"
    )
    parser.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT to serve on (port 0: any free)")
    parser.add_argument("--probe-period", type=float, default=0.1, help="readiness probe period, seconds")
    parser.add_argument(
        "--upstream",
        choices=["endpoints", "service"],
        default="endpoints",
        help="endpoints: probe the pods and pick one; service: connect to the Service's ClusterIP",
    )
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    try:
        knobs = Knobs.from_env()
    except ValueError as exc:
        print(f"ingress: {exc}", file=sys.stderr)
        return 2
    telemetry.exit_on_sigterm()
    telemetry.configure("ingress")
    endpoints = Endpoints(args.state, probe_period=args.probe_period)
    server = IngressServer((host or "127.0.0.1", int(port)), IngressHandler)
    server.endpoints, server.knobs = endpoints, knobs
    server.via_service = args.upstream == "service"
    if server.via_service:
        endpoints.probing = False
    endpoints.start()
    emit("listening", host=server.server_address[0], port=server.server_address[1])
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        endpoints.stop()
        server.server_close()
        telemetry.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A small Kubernetes API server for tests: real HTTP on 127.0.0.1 speaking the REST and watch protocol.

It serves namespaced ``get`` for pods/replicasets and ``list``/``watch`` (chunked JSON lines) for any
resource path, with a global resourceVersion, so the real ``kubernetes`` client talks to it unpatched.
Tests drive it: :meth:`put`/:meth:`delete` (recorded as watch events), ``fail`` (status per resource, e.g.
403 or 404), :meth:`expire` (the next watch answers ``410 Gone``), and read :attr:`requests`.
Built on pytest-httpserver's threaded server so a held-open watch does not block other requests.
"""

from __future__ import annotations

import json
import re
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

_PATH = re.compile(r"^/(?:api/v1|apis/(?P<group>[^/]+)/(?P<version>[^/]+))/namespaces/(?P<ns>[^/]+)/"
                   r"(?P<resource>[^/]+)(?:/(?P<name>[^/]+))?$")  # fmt: skip


class FakeKubeApi:
    """State plus handler; use :meth:`start`/:meth:`stop` or as a context manager."""

    def __init__(self, namespace: str = "shop", *, watch_cap: float = 30.0) -> None:
        self.namespace = namespace
        self.watch_cap = watch_cap
        self.server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
        self.objects: dict[str, dict[str, dict[str, Any]]] = {}
        self.events: dict[str, list[tuple[int, str, dict[str, Any]]]] = {}
        self.version = 100
        #: resource -> HTTP status to answer instead (e.g. {"httproutes": 404, "*": 403}).
        self.fail: dict[str, int] = {}
        #: resource -> HTTP status to answer to watch requests only (lists still succeed).
        self.fail_watches: dict[str, int] = {}
        #: (monotonic time, method, path, query) of every request received.
        self.requests: list[tuple[float, str, str, str]] = []
        self._expired: set[str] = set()
        self._cond = threading.Condition()
        self._stopping = False

    # --- life cycle ---------------------------------------------------------------------------

    def start(self) -> FakeKubeApi:
        self.server.expect_request(re.compile(".*")).respond_with_handler(self._handle)
        self.server.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self.server.clear()
        if self.server.is_running():
            self.server.stop()

    def __enter__(self) -> FakeKubeApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def write_kubeconfig(self, path: Path) -> Path:
        path.write_text(
            textwrap.dedent(f"""\
                apiVersion: v1
                kind: Config
                clusters:
                - name: fake
                  cluster: {{server: "{self.url}"}}
                users:
                - name: fake
                  user: {{token: fake-token}}
                contexts:
                - name: fake
                  context: {{cluster: fake, user: fake, namespace: {self.namespace}}}
                current-context: fake
                """)
        )
        return path

    # --- state changes (test side) ------------------------------------------------------------

    def put(self, resource: str, obj: dict[str, Any], *, event: bool = True) -> int:
        """Create or replace an object; record an ADDED/MODIFIED event unless ``event`` is False."""
        with self._cond:
            self.version += 1
            meta = obj.setdefault("metadata", {})
            meta.setdefault("namespace", self.namespace)
            meta["resourceVersion"] = str(self.version)
            store = self.objects.setdefault(resource, {})
            kind = "MODIFIED" if meta["name"] in store else "ADDED"
            store[meta["name"]] = obj
            if event:
                self.events.setdefault(resource, []).append((self.version, kind, obj))
            self._cond.notify_all()
            return self.version

    def delete(self, resource: str, name: str) -> None:
        with self._cond:
            self.version += 1
            obj = self.objects.get(resource, {}).pop(name)
            obj["metadata"]["resourceVersion"] = str(self.version)
            self.events.setdefault(resource, []).append((self.version, "DELETED", obj))
            self._cond.notify_all()

    def expire(self, resource: str) -> None:
        """End open watches of ``resource``; the next watch request gets a 410 Gone ERROR event."""
        with self._cond:
            self._expired.add(resource)
            self._cond.notify_all()

    def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait (on the server's condition, woken by every request and change) until ``predicate()``."""
        with self._cond:
            return self._cond.wait_for(predicate, timeout)

    def count(self, resource: str, *, watch: bool | None = None, since: float = 0.0) -> int:
        """Requests for ``resource`` (list or watch or both) received after ``since`` (monotonic)."""
        n = 0
        for t, _, path, query in list(self.requests):
            m = _PATH.match(path)
            if t < since or not m or m["resource"] != resource:
                continue
            is_watch = "watch=true" in query.lower()
            if watch is None or watch == is_watch:
                n += 1
        return n

    # --- HTTP ---------------------------------------------------------------------------------

    def _status(self, code: int, reason: str) -> Response:
        body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason,
                "message": f"fake api: {reason}"}  # fmt: skip
        return Response(json.dumps(body), status=code, mimetype="application/json")

    def _handle(self, request: Request) -> Response:
        with self._cond:
            self.requests.append(
                (time.monotonic(), request.method, request.path, request.query_string.decode())
            )
            self._cond.notify_all()
        m = _PATH.match(request.path)
        if not m:
            return self._status(404, "NotFound")
        resource, name = m["resource"], m["name"]
        code = self.fail.get(resource) or self.fail.get("*")
        if code:
            return self._status(code, {403: "Forbidden", 404: "NotFound"}.get(code, "Error"))
        if name:
            obj = self.objects.get(resource, {}).get(name)
            return (
                Response(json.dumps(obj), mimetype="application/json")
                if obj
                else self._status(404, "NotFound")
            )
        if request.args.get("watch") in ("true", "1"):
            code = self.fail_watches.get(resource)
            if code:
                return self._status(code, "InternalError")
            return self._watch(resource, request)
        with self._cond:
            items = list(self.objects.get(resource, {}).values())
            body = {"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": str(self.version)},
                    "items": items}  # fmt: skip
        return Response(json.dumps(body), mimetype="application/json")

    def _watch(self, resource: str, request: Request) -> Response:
        since = int(request.args.get("resourceVersion") or 0)
        timeout = min(float(request.args.get("timeoutSeconds") or self.watch_cap), self.watch_cap)
        deadline = time.monotonic() + timeout

        def stream():
            nonlocal since
            yield ""  # makes werkzeug send the headers now, as a real API server does
            with self._cond:
                if resource in self._expired:
                    self._expired.discard(resource)
                    gone = {"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "code": 410,
                            "reason": "Expired", "message": "too old resource version"}}  # fmt: skip
                    yield json.dumps(gone) + "\n"
                    return
            while True:
                with self._cond:
                    pending = [e for e in self.events.get(resource, []) if e[0] > since]
                    if not pending:
                        remaining = deadline - time.monotonic()
                        if self._stopping or remaining <= 0 or resource in self._expired:
                            return
                        self._cond.wait(min(remaining, 0.5))
                        continue
                for version, kind, obj in pending:
                    since = version
                    yield json.dumps({"type": kind, "object": obj}) + "\n"

        return Response(stream(), mimetype="application/json")


# --- object builders -------------------------------------------------------------------------


def ingress(name: str, rules: list[dict[str, Any]], *, default: str | None = None, created: str = "",
            klass: str | None = None) -> dict[str, Any]:  # fmt: skip
    spec: dict[str, Any] = {"rules": rules}
    if default:
        spec["defaultBackend"] = {"service": {"name": default, "port": {"number": 80}}}
    if klass:
        spec["ingressClassName"] = klass
    meta = {"name": name, "namespace": "shop"}
    if created:
        meta["creationTimestamp"] = created
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta, "spec": spec}


def rule(host: str | None, *paths: tuple[str, str, str], port: int | str = 80) -> dict[str, Any]:
    """An Ingress rule; each path is (path, pathType, service)."""

    def backend(svc: str) -> dict[str, Any]:
        key = "number" if isinstance(port, int) else "name"
        return {"service": {"name": svc, "port": {key: port}}}

    r: dict[str, Any] = {"http": {"paths": [{"path": p, "pathType": t, "backend": backend(s)}
                                            for p, t, s in paths]}}  # fmt: skip
    if host:
        r["host"] = host
    return r


def service(
    name: str, selector: dict[str, str] | None, ports: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {"ports": ports or [{"name": "http", "port": 80, "targetPort": 8080}]}
    if selector is not None:
        spec["selector"] = selector
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": spec,
    }


def httproute(name: str, hostnames: list[str], rules: list[dict[str, Any]], *, gateway: str = "shop-gw",
              created: str = "") -> dict[str, Any]:  # fmt: skip
    meta = {"name": name, "namespace": "shop"}
    if created:
        meta["creationTimestamp"] = created
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": meta,
            "spec": {"parentRefs": [{"name": gateway}], "hostnames": hostnames, "rules": rules}}  # fmt: skip


def route_rule(*matches: tuple[str, str], backend: str, port: int = 80) -> dict[str, Any]:
    """An HTTPRoute rule; each match is (type, value)."""
    return {"matches": [{"path": {"type": t, "value": v}} for t, v in matches],
            "backendRefs": [{"name": backend, "port": port}]}  # fmt: skip


def pod(name: str, labels: dict[str, str], owner: tuple[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "shop", "uid": f"uid-{name}", "labels": labels}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1],
                                    "controller": True, "uid": "x"}]  # fmt: skip
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"nodeName": "node-1"}, "status": {"podIP": "10.0.0.7"}}  # fmt: skip


def replicaset(name: str, deployment: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {
        "name": name, "namespace": "shop",
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment,
                             "controller": True, "uid": "y"}]}}  # fmt: skip

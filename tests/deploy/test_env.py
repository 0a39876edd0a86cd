"""The shop Deployment sets exactly the environment the library and the demo read.

Downward API names and field paths come from ``tracekit.k8s.downward`` (ENV_VARS, FIELD_REFS): the one
place both sides are defined. The demo's own variables follow COMMON.md (SHOP_PORT, SHOP_DB_URL,
DB_LISTEN, DB_PATH).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from tests.deploy.kit import Obj, container, one, render
from tracekit.k8s.downward import ENV_VARS, FIELD_REFS

#: Set as literals (CONTAINER_NAME) or plain configuration (K8S_CLUSTER_NAME), not through fieldRef.
LITERAL = "CONTAINER_NAME"
OPTIONAL = frozenset({"K8S_CLUSTER_NAME"})


@pytest.fixture(scope="module")
def pod_spec() -> Obj:
    return one(render("deploy"), "Deployment", "shop", "shop")["spec"]["template"]["spec"]


def _env(c: Obj) -> dict[str, Obj]:
    names = [e["name"] for e in c.get("env") or []]
    assert len(names) == len(set(names)), f"{c['name']}: duplicate env names"
    return {e["name"]: e for e in c.get("env") or []}


def test_library_contract_is_complete() -> None:
    # Every variable the library reads is either a fieldRef, the literal container name or optional.
    assert set(ENV_VARS) == set(FIELD_REFS) | {LITERAL} | OPTIONAL


@pytest.mark.parametrize("name", ["app", "db"])
def test_downward_env_is_exactly_what_the_library_reads(pod_spec: Obj, name: str) -> None:
    env = _env(container(pod_spec, name))
    downward = {n for n, e in env.items() if "fieldRef" in (e.get("valueFrom") or {})}
    assert downward == set(FIELD_REFS)
    for var, path in FIELD_REFS.items():
        assert env[var]["valueFrom"]["fieldRef"]["fieldPath"] == path
    assert env[LITERAL].get("value") == name
    assert set(ENV_VARS) - OPTIONAL <= set(env)
    for var in OPTIONAL & set(env):
        ref = (env[var].get("valueFrom") or {}).get("configMapKeyRef")
        assert "value" in env[var] or (ref and ref.get("optional") is True), f"{var} must stay optional"


@pytest.mark.parametrize(("name", "service"), [("app", "shop"), ("db", "shop-db")])
def test_otel_identity_per_container(pod_spec: Obj, name: str, service: str) -> None:
    env = _env(container(pod_spec, name))
    assert env["OTEL_SERVICE_NAME"]["value"] == service
    # $(VAR) only expands variables defined earlier in the list (Kubernetes semantics).
    order = list(env)
    raw = env["OTEL_RESOURCE_ATTRIBUTES"]["value"]
    for ref in re.findall(r"\$\((\w+)\)", raw):
        assert ref in env and order.index(ref) < order.index("OTEL_RESOURCE_ATTRIBUTES"), ref
    attrs = dict(pair.split("=", 1) for pair in raw.split(","))
    assert attrs["k8s.container.name"] == name
    assert attrs["k8s.pod.uid"] == "$(POD_UID)", "the collector associates pods by k8s.pod.uid"


def test_sidecar_listens_on_loopback_and_app_finds_it(pod_spec: Obj) -> None:
    app, db = _env(container(pod_spec, "app")), _env(container(pod_spec, "db"))
    host, port = db["DB_LISTEN"]["value"].rsplit(":", 1)
    assert host == "127.0.0.1"
    url = urlsplit(app["SHOP_DB_URL"]["value"])
    assert (url.hostname, url.port) == (host, int(port))
    assert not container(pod_spec, "db").get("ports"), "the sidecar is not reachable from the pod network"
    # Its probes therefore run inside the container.
    for probe in ("readinessProbe", "livenessProbe"):
        assert "exec" in container(pod_spec, "db")[probe]


def test_sqlite_lives_on_an_emptydir(pod_spec: Obj) -> None:
    db = container(pod_spec, "db")
    directory = _env(db)["DB_PATH"]["value"].rsplit("/", 1)[0]
    (mount,) = [m for m in db["volumeMounts"] if m["mountPath"] == directory]
    volume = next(v for v in pod_spec["volumes"] if v["name"] == mount["name"])
    assert "emptyDir" in volume


def test_app_port_and_probes(pod_spec: Obj) -> None:
    app = container(pod_spec, "app")
    (port,) = app["ports"]
    assert (port["name"], port["containerPort"]) == ("http", 8080)
    assert int(_env(app)["SHOP_PORT"]["value"]) == port["containerPort"]
    # The shop binds loopback by default; probes and the Service dial the pod IP.
    assert _env(app)["SHOP_HOST"]["value"] == "0.0.0.0"
    assert app["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert app["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert app["command"] == ["python", "-m", "demo_app.logic"]
    assert container(pod_spec, "db")["command"] == ["python", "-m", "demo_app.db_sidecar"]
    for c in pod_spec["containers"]:
        assert c["image"] == "tracekit-demo:0.1.0"

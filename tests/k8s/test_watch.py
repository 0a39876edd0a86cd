"""The routing watch and pod lookup against a real HTTP API server, with the real ``kubernetes`` client."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.k8s import fakeapi
from tests.k8s.conftest import seed
from tracekit import attributes as a
from tracekit.k8s import api_calls, client, metadata
from tracekit.k8s.watch import RoutingWatch

WAIT = 10.0  # generous condition timeout for a loaded machine; tests normally finish far sooner


def _rules() -> list[dict]:
    return [
        fakeapi.ingress(
            "shop",
            [
                fakeapi.rule(
                    "shop.example.com",
                    ("/", "Prefix", "web-service"),
                    ("/api", "Prefix", "api"),
                    ("/api/v1/login", "Exact", "login"),
                    ("/api/v1/login", "Prefix", "login-prefix"),
                ),
                fakeapi.rule("*.tenants.example.com", ("/", "Prefix", "tenants")),
            ],
            klass="nginx",
        ),
        fakeapi.ingress(
            "fallback",
            [fakeapi.rule("static.example.com", ("/assets", "Exact", "assets"))],
            default="default-http",
            created="2030-01-01T00:00:00Z",  # newer: its defaultBackend is the only one
        ),
    ]


@pytest.fixture(scope="module")
def routed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoutingWatch]:
    """One fake API with a routing set, watched once for the whole (read-only) table of cases."""
    api = fakeapi.FakeKubeApi(watch_cap=5).start()
    kubeconfig = api.write_kubeconfig(tmp_path_factory.mktemp("kube") / "kubeconfig")
    for ing in _rules():
        api.put("ingresses", ing)
    api.put("services", fakeapi.service("web-service", {"app.kubernetes.io/name": "shop"}))
    api.put("services", fakeapi.service("api", {"app.kubernetes.io/name": "api"}))
    api.put(
        "httproutes",
        fakeapi.httproute(
            "shop-route",
            ["gw.example.com"],
            [fakeapi.route_rule(("PathPrefix", "/cart"), backend="web-service")],
        ),
    )
    conn = client.connect("kubeconfig", {"KUBECONFIG": str(kubeconfig), "POD_NAMESPACE": "shop"})
    watch = RoutingWatch(conn, {"app.kubernetes.io/name": "shop"}, watch_timeout=3).start()
    assert watch.wait_settled(WAIT)
    yield watch
    watch.stop()
    api.stop()


@pytest.mark.parametrize(
    ("host", "path", "expected"),
    [
        (
            "shop.example.com",
            "/",
            {a.INGRESS_NAME: "shop", a.INGRESS_RULE_PATH: "/", a.BACKEND_SERVICE_NAME: "web-service"},
        ),
        (
            "shop.example.com:443",
            "/api/items",
            {a.INGRESS_RULE_PATH: "/api", a.INGRESS_RULE_PATH_TYPE: "Prefix", a.BACKEND_SERVICE_NAME: "api"},
        ),
        ("shop.example.com", "/apix", {a.INGRESS_RULE_PATH: "/", a.BACKEND_SERVICE_NAME: "web-service"}),
        (
            "shop.example.com",
            "/api/v1/login",
            {a.INGRESS_RULE_PATH_TYPE: "Exact", a.BACKEND_SERVICE_NAME: "login"},
        ),
        (
            "shop.example.com",
            "/api/v1/login/x",
            {a.INGRESS_RULE_PATH_TYPE: "Prefix", a.BACKEND_SERVICE_NAME: "login-prefix"},
        ),
        (
            "acme.tenants.example.com",
            "/x",
            {a.INGRESS_RULE_HOST: "*.tenants.example.com", a.BACKEND_SERVICE_NAME: "tenants"},
        ),
        (
            "a.b.tenants.example.com",
            "/x",
            {
                a.INGRESS_NAME: "fallback",
                a.INGRESS_DEFAULT_BACKEND: True,
                a.BACKEND_SERVICE_NAME: "default-http",
            },
        ),
        (
            "static.example.com",
            "/assets",
            {a.INGRESS_NAME: "fallback", a.INGRESS_DEFAULT_BACKEND: None, a.BACKEND_SERVICE_NAME: "assets"},
        ),
        ("nowhere.org", "/", {a.INGRESS_DEFAULT_BACKEND: True, a.ROUTE_MATCHED: True}),
        (
            "gw.example.com",
            "/cart/1",
            {
                a.HTTPROUTE_NAME: "shop-route",
                a.HTTPROUTE_PATH: "/cart",
                a.GATEWAY_NAME: "shop-gw",
                a.BACKEND_SERVICE_NAME: "web-service",
                a.BACKEND_SELECTS_POD: True,
            },
        ),
    ],
    ids=[
        "root",
        "prefix",
        "element-wise",
        "exact-beats-prefix",
        "longest-prefix",
        "wildcard",
        "wildcard-one-label",
        "exact-other-ingress",
        "default-backend",
        "httproute",
    ],
)
def test_ingress_table_through_the_api(routed: RoutingWatch, host: str, path: str, expected: dict) -> None:
    attrs = routed.table.attributes(host, path)
    assert {k: attrs.get(k) for k in expected} == expected
    assert attrs[a.ROUTE_MATCHED] is True


def test_selector_against_pod_labels(routed: RoutingWatch) -> None:
    assert routed.table.attributes("shop.example.com", "/")[a.BACKEND_SELECTS_POD] is True
    attrs = routed.table.attributes("shop.example.com", "/api")
    assert attrs[a.BACKEND_SERVICE_NAME] == "api" and attrs[a.BACKEND_SELECTS_POD] is False
    assert a.INGRESS_CLASS in attrs and attrs[a.INGRESS_CLASS] == "nginx"


def test_no_match_without_default_backend(kube: fakeapi.FakeKubeApi) -> None:
    seed(kube)
    ctx = metadata.pod_context()
    watch = RoutingWatch(ctx.connection, ctx.labels, watch_timeout=3).start()
    try:
        assert watch.wait_settled(WAIT)
        assert watch.table.attributes("unknown.example.org", "/") == {a.ROUTE_MATCHED: False}
    finally:
        watch.stop()


def test_pod_lookup_owner_chain(kube: fakeapi.FakeKubeApi) -> None:
    seed(kube)
    ctx = metadata.pod_context()
    assert ctx.labels == {"app.kubernetes.io/name": "shop", "pod-template-hash": "abc"}
    attrs = ctx.attributes
    assert attrs[a.K8S_DEPLOYMENT_NAME] == "shop"
    assert attrs[a.K8S_REPLICASET_NAME] == "shop-abc"
    assert attrs[a.K8S_POD_UID] == "uid-shop-1" and attrs[a.K8S_NODE_NAME] == "node-1"
    assert attrs[a.K8S_POD_LABEL_PREFIX + "app.kubernetes.io/name"] == "shop"
    assert attrs[a.K8S_CONTAINER_NAME] == "app"  # Downward API / env, kept alongside the lookup


@pytest.mark.parametrize("kind", ["StatefulSet", "DaemonSet", "Job"])
def test_pod_lookup_other_owners(kube: fakeapi.FakeKubeApi, kind: str) -> None:
    kube.put("pods", fakeapi.pod("shop-1", {"app": "x"}, (kind, "owner-x")))
    key = {"StatefulSet": a.K8S_STATEFULSET_NAME, "DaemonSet": a.K8S_DAEMONSET_NAME, "Job": a.K8S_JOB_NAME}[
        kind
    ]
    attrs = metadata.pod_context().attributes
    assert attrs[key] == "owner-x"
    assert a.K8S_DEPLOYMENT_NAME not in attrs


def test_watch_event_changes_routing_of_later_requests(kube: fakeapi.FakeKubeApi) -> None:
    seed(kube)
    ctx = metadata.pod_context()
    watch = RoutingWatch(ctx.connection, ctx.labels, watch_timeout=3).start()
    try:
        assert watch.wait_settled(WAIT)
        assert watch.table.attributes("shop.example.com", "/v2/x")[a.INGRESS_RULE_PATH] == "/"
        kube.put(
            "ingresses",
            fakeapi.ingress(
                "shop",
                [fakeapi.rule("shop.example.com", ("/", "Prefix", "web-service"), ("/v2", "Prefix", "v2"))],
            ),
        )
        assert watch.wait_for(
            lambda t: t.attributes("shop.example.com", "/v2/x").get(a.BACKEND_SERVICE_NAME) == "v2", WAIT
        )
        kube.delete("ingresses", "shop")
        assert watch.wait_for(lambda t: not t.attributes("shop.example.com", "/")[a.ROUTE_MATCHED], WAIT)
        assert watch.stats["errors"] == 0
    finally:
        watch.stop()


def test_410_gone_lists_again(kube: fakeapi.FakeKubeApi) -> None:
    seed(kube)
    ctx = metadata.pod_context()
    watch = RoutingWatch(ctx.connection, ctx.labels, watch_timeout=3).start()
    try:
        assert watch.wait_settled(WAIT)
        lists_before = kube.count("ingresses", watch=False)
        kube.expire("ingresses")
        # A change the watch never sees as an event: only a fresh list can pick it up.
        kube.put(
            "ingresses",
            fakeapi.ingress("late", [fakeapi.rule("late.example.com", ("/", "Prefix", "web-service"))]),
            event=False,
        )
        assert watch.wait_for(
            lambda t: t.attributes("late.example.com", "/").get(a.INGRESS_NAME) == "late", WAIT
        )
        assert watch.stats["relists"] >= 1
        assert kube.count("ingresses", watch=False) > lists_before
    finally:
        watch.stop()


def test_api_down_at_start_is_bounded_and_warns_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, dead_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    api = fakeapi.FakeKubeApi()
    api.server.port = dead_port  # never started: the kubeconfig points at a closed port
    monkeypatch.setenv("KUBECONFIG", str(api.write_kubeconfig(tmp_path / "kubeconfig")))
    monkeypatch.setenv("TRACEKIT_K8S", "kubeconfig")
    monkeypatch.setenv("TRACEKIT_K8S_TIMEOUT", "1")
    monkeypatch.setenv("POD_NAME", "shop-1")
    monkeypatch.setenv("POD_NAMESPACE", "shop")
    metadata.clear_cache()
    caplog.set_level(logging.INFO, logger="tracekit")
    ctx = metadata.pod_context()
    assert ctx.labels is None and ctx.connection is not None
    assert ctx.attributes[a.K8S_POD_NAME] == "shop-1"  # Downward API values still there
    watch = RoutingWatch(ctx.connection, ctx.labels, watch_timeout=3, backoff=(0.05, 0.2)).start()
    try:
        assert watch.wait_settled(WAIT)
        assert watch.wait_for(lambda t: watch.stats["errors"] >= 3, WAIT)
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len([w for w in warnings if "pod lookup failed" in w.getMessage()]) == 1
        assert len([w for w in warnings if "cannot watch" in w.getMessage()]) == 1  # once, despite retries
        assert watch.table.attributes("shop.example.com", "/") == {a.ROUTE_MATCHED: False}
    finally:
        watch.stop()
        metadata.clear_cache()


def test_403_warns_once_then_recovers(kube: fakeapi.FakeKubeApi, caplog: pytest.LogCaptureFixture) -> None:
    seed(kube)
    kube.fail["*"] = 403
    caplog.set_level(logging.INFO, logger="tracekit")
    ctx = metadata.pod_context()
    assert ctx.labels is None
    watch = RoutingWatch(
        ctx.connection, {"app.kubernetes.io/name": "shop"}, watch_timeout=3, backoff=(0.05, 0.2)
    )
    watch.start()
    try:
        assert watch.wait_settled(WAIT)
        messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("403 Forbidden" in m and "RBAC" in m for m in messages)
        assert len([m for m in messages if "cannot watch" in m]) == 1
        kube.fail.clear()  # RBAC fixed: the backoff retry picks the objects up
        assert watch.wait_for(
            lambda t: t.attributes("shop.example.com", "/").get(a.INGRESS_NAME) == "shop", WAIT
        )
    finally:
        watch.stop()


def test_gateway_crds_missing_is_quiet(kube: fakeapi.FakeKubeApi, caplog: pytest.LogCaptureFixture) -> None:
    seed(kube)
    kube.fail["httproutes"] = 404
    caplog.set_level(logging.INFO, logger="tracekit")
    ctx = metadata.pod_context()
    watch = RoutingWatch(ctx.connection, ctx.labels, watch_timeout=3).start()
    try:
        assert watch.wait_settled(WAIT)
        assert watch.table.attributes("shop.example.com", "/")[a.INGRESS_NAME] == "shop"
        assert watch.stats["errors"] == 0
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    finally:
        watch.stop()


def test_not_in_cluster_one_info_line_no_requests(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("TRACEKIT_K8S", "auto")
    monkeypatch.setenv("POD_NAME", "p")
    metadata.clear_cache()
    caplog.set_level(logging.INFO, logger="tracekit")
    ctx = metadata.pod_context()
    ctx_again = metadata.pod_context()
    assert ctx is ctx_again and ctx.connection is None and ctx.labels is None
    infos = [r for r in caplog.records if r.name.startswith("tracekit")]
    assert (
        len(infos) == 1
        and infos[0].levelno == logging.INFO
        and "not running in a Kubernetes" in infos[0].getMessage()
    )
    metadata.clear_cache()


def test_every_request_is_declared_in_api_calls(kube: fakeapi.FakeKubeApi) -> None:
    """The code makes only the calls API_CALLS lists (which the Role is derived from)."""
    seed(kube)
    ctx = metadata.pod_context()
    watch = RoutingWatch(ctx.connection, ctx.labels, watch_timeout=3).start()
    try:
        assert watch.wait_settled(WAIT)
        assert kube.wait_until(lambda: kube.count("ingresses", watch=True) > 0, WAIT)
    finally:
        watch.stop()
    allowed = {(c.resource, v) for c in api_calls.API_CALLS for v in c.verbs}
    seen = set()
    for _, method, path, query in kube.requests:
        parts = path.strip("/").split("/")
        resource_at = parts.index("namespaces") + 2
        resource = parts[resource_at]
        verb = "watch" if "watch=true" in query.lower() else "list"
        if len(parts) > resource_at + 1:
            verb = "get"
        assert method == "GET"
        seen.add((resource, verb))
    assert seen <= allowed, seen - allowed
    assert {("pods", "get"), ("ingresses", "list"), ("services", "list")} <= seen


def test_role_rules_cover_api_calls() -> None:
    rules = api_calls.role_rules()
    granted = {
        (g, r, v)
        for rule in rules
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }
    needed = {(c.group, c.resource, v) for c in api_calls.API_CALLS for v in c.verbs}
    assert granted == needed


def _child_sees_update(watch: RoutingWatch, queue) -> None:  # runs in the forked child
    ok = watch.wait_for(
        lambda t: t.attributes("fork.example.com", "/").get(a.INGRESS_NAME) == "after-fork", WAIT
    )
    queue.put(ok)


def test_watch_keeps_running_in_a_forked_child(kube: fakeapi.FakeKubeApi) -> None:
    """gunicorn --preload forks after instrument(): the child's table must still follow the cluster."""
    import multiprocessing

    seed(kube)
    ctx = metadata.pod_context()
    watch = RoutingWatch(ctx.connection, ctx.labels, watch_timeout=3).start()
    try:
        assert watch.wait_settled(WAIT)
        mp = multiprocessing.get_context("fork")
        queue = mp.Queue()
        child = mp.Process(target=_child_sees_update, args=(watch, queue))
        child.start()
        kube.put(
            "ingresses",
            fakeapi.ingress("after-fork", [fakeapi.rule("fork.example.com", ("/", "Prefix", "web-service"))]),
        )
        assert queue.get(timeout=WAIT + 5) is True
        child.join(5)
    finally:
        watch.stop()


def test_in_cluster_without_service_account_token_warns_and_continues(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # KUBERNETES_SERVICE_HOST says "in a cluster", but no token is mounted (automount disabled).
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "1")
    monkeypatch.setenv("TRACEKIT_K8S", "auto")
    monkeypatch.setenv("POD_NAME", "p")
    metadata.clear_cache()
    caplog.set_level(logging.INFO, logger="tracekit")
    ctx = metadata.pod_context()
    assert ctx.connection is None and ctx.attributes[a.K8S_POD_NAME] == "p"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "cannot configure the Kubernetes client" in warnings[0].getMessage()
    metadata.clear_cache()

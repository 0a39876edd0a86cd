"""The layer rule table: built-in rules for each ingress/proxy/convention, user rules, bad files."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from tests.analyze.cli_run import one_line_error, run
from tests.analyze.conftest import run_checked
from tracekit.analyze.model import Span, SpanKind, Trace
from tracekit.analyze.processors import Options
from tracekit.analyze.rules import CACHE_SIZE, load_rules
from tracekit.errors import RulesError

RULES = load_rules()
SERVER_SPAN = Span("0" * 31 + "1", "1" * 16, None, "op", SpanKind.SERVER, 0, 10, "svc", attributes={})
K8S = {"k8s.pod.name": "p-1", "k8s.pod.uid": "u-1", "k8s.namespace.name": "ns", "k8s.node.name": "n1"}


def span(name="op", kind=SpanKind.INTERNAL, service="svc", attrs=None, res=None, **kw) -> Span:
    resource = {"service.name": service, **(res or {})}
    return Span(
        "0" * 31 + "1",
        kw.pop("sid", "1" * 16),
        kw.pop("parent", None),
        name,
        kind,
        kw.pop("start", 0),
        kw.pop("end", 10),
        service=service,
        attributes=attrs or {},
        resource=resource,
        **kw,
    )


@pytest.mark.parametrize(
    ("s", "layer"),
    [
        (span(attrs={"db.system": "postgresql"}, kind=SpanKind.CLIENT), "db"),
        (span(attrs={"db.system.name": "sqlite"}, kind=SpanKind.CLIENT), "db"),
        (span(attrs={"tracekit.component": "ingress"}, kind=SpanKind.SERVER), "ingress"),
        (span(attrs={"tracekit.component": "client"}, kind=SpanKind.CLIENT), "client"),
        (span(kind=SpanKind.SERVER, res={"k8s.container.name": "db"}), "sidecar"),
        (span(kind=SpanKind.SERVER, service="shop-db"), "sidecar"),
        (span(name="EntryPoint", service="edge-proxy", kind=SpanKind.SERVER), "ingress"),
        (span(name="Router", service="traefik"), "ingress"),
        (span(name="Router", service="x", attrs={"traefik.router.name": "web@docker"}), "ingress"),
        (
            span(
                kind=SpanKind.SERVER,
                service="ingress-nginx",
                attrs={"http.method": "GET", "http.status_code": 200, "net.peer.ip": "10.0.0.1"},
            ),
            "ingress",
        ),
        (
            span(
                kind=SpanKind.CLIENT,
                service="istio-ingressgateway",
                attrs={"component": "proxy", "upstream_cluster": "outbound|80||web", "response_flags": "-"},
            ),
            "ingress",
        ),
        (
            span(kind=SpanKind.SERVER, service="envoy-default-eg", attrs={"upstream_cluster": "httproute/x"}),
            "ingress",
        ),
        (
            span(
                kind=SpanKind.CLIENT,
                service="web.shop",
                attrs={"component": "proxy", "node_id": "sidecar~10.0.0.5~web-1.shop~shop.svc.cluster.local"},
            ),
            "service",
        ),
        (
            span(  # Caddy's tracing handler (otelhttp): current conventions, webengine.* on the resource
                kind=SpanKind.SERVER,
                service="ingress-controller",
                attrs={"http.request.method": "GET", "url.path": "/x", "http.response.status_code": 200},
                res={"webengine.name": "Caddy", "webengine.version": "v2.11.7", "k8s.pod.name": "caddy-0"},
            ),
            "ingress",
        ),
        (span(kind=SpanKind.SERVER, attrs={"http.request.method": "GET", "http.route": "/x"}), "app"),
        (span(kind=SpanKind.SERVER, attrs={"http.method": "GET", "http.target": "/x"}), "app"),
        (span(kind=SpanKind.CONSUMER), "app"),
    ],
    ids=lambda v: v if isinstance(v, str) else f"{v.service}:{v.name}",
)
def test_builtin_rules(s: Span, layer: str) -> None:
    assert RULES.classify(s) == layer
    assert RULES.classify(s) == layer  # cached answer is the same


def test_cached_answers_follow_the_dicts_not_their_recycled_ids() -> None:
    """The by-identity cache keys on id() of attribute dicts. Dicts created and dropped in turn get
    the same address over and over in CPython; each answer must still be the rules' own answer."""
    table = load_rules()
    resource = {"service.name": "svc", "k8s.pod.name": "p"}
    shapes = [
        ({"http.request.method": "GET", "http.route": "/x"}, "app"),
        ({"tracekit.component": "ingress", "x": "y"}, "ingress"),
    ]
    for i in range(2000):
        attrs, layer = shapes[i % 2]
        s = Span("0" * 31 + "1", "1" * 16, None, "op", SpanKind.SERVER, 0, 10, "svc", attributes=dict(attrs))
        s = msgspec.structs.replace(s, resource=resource)
        assert table.classify(s) == layer, i
        del s


def test_resources_with_unhashable_values_never_share_answers_through_recycled_ids(tmp_path: Path) -> None:
    """A resource whose rule-key value is a list has no content key. Its answers must not be found
    again by the address of a freed dict that a new, different resource now occupies: the caches
    are cleared at their size bounds at different moments, so dicts are freed and their addresses
    reused while older entries remain."""
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n"
        "  - {layer: ingress, attributes: {role: proxy}}\n"
        "  - {layer: external, attributes: {tags: never}}\n"
    )
    table = load_rules(path)
    plain = {"service.name": "svc", "k8s.pod.name": "p", "role": "web"}
    shapes = [("proxy", "ingress"), ("web", "app")]
    for i in range(3 * CACHE_SIZE):
        role, layer = shapes[(i // 7) % 2]
        listed = {"service.name": "svc", "k8s.pod.name": "p", "role": role, "tags": ["a"]}
        for resource, expected in ((listed, layer), (dict(plain), "app")):
            s = msgspec.structs.replace(SERVER_SPAN, resource=resource)
            assert table.classify(s) == expected, i
        del s, listed, resource


def test_no_rule_falls_back_by_parent_kind_and_k8s() -> None:
    root = span(name="job", sid="a" * 16)
    child = span(name="step", sid="b" * 16, parent="a" * 16)
    other = span(name="x", sid="c" * 16, parent="a" * 16, service="other", res=K8S)
    lost = span(name="y", sid="d" * 16, parent="a" * 16, service="third")
    tree = run_checked(Trace(root.trace_id, [root, child, other, lost]))
    assert [n.layer for n in tree.nodes] == ["client", "client", "app", "unknown"]


def test_ingress_nginx_single_span_keeps_the_pod_hop_in_ingress() -> None:
    nginx = span(
        name="GET /",
        kind=SpanKind.SERVER,
        service="ingress-nginx",
        sid="a" * 16,
        start=0,
        end=100,
        attrs={"http.method": "GET", "http.status_code": 200},
    )
    app = span(
        name="GET /",
        kind=SpanKind.SERVER,
        service="shop",
        sid="b" * 16,
        parent="a" * 16,
        start=10,
        end=90,
        res=K8S,
        attrs={"http.request.method": "GET"},
    )
    tree = run_checked(Trace(nginx.trace_id, [nginx, app]))
    assert tree.attribution == {"ingress": 20, "app": 80}


def test_user_rules_come_first_and_replace_the_sidecar_lists(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "sidecar:\n  containers: [cache]\n"
        "rules:\n"
        "  - {layer: ingress, service: [kong], kind: server, name_regex: '^kong'}\n"
        "  - {layer: external, attributes: {peer.service: {regex: '^stripe'}}}\n"
        "  - {layer: edge, attribute_prefix: 'cdn.'}\n"
    )
    rules = load_rules(path)
    assert rules.classify(span(name="kong.access", kind=SpanKind.SERVER, service="kong")) == "ingress"
    assert rules.classify(span(name="other", kind=SpanKind.SERVER, service="kong")) == "app"
    assert rules.classify(span(attrs={"peer.service": "stripe-api"})) == "external"
    assert rules.classify(span(attrs={"cdn.pop": "fra"})) == "edge"
    assert rules.classify(span(kind=SpanKind.SERVER, res={"k8s.container.name": "cache"})) == "sidecar"
    assert rules.classify(span(kind=SpanKind.SERVER, res={"k8s.container.name": "db"})) == "app"
    opts = Options(rules=rules)
    assert opts.rules is rules


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("rules: [\n", "not valid YAML"),
        ("- just a list\n", "a rules file is a mapping"),
        ("rules:\n  - layer: nowhere\n", "rule 1: field 'layer'"),
        ("rules:\n  - {layer: app, colour: red}\n", "rule 1: unknown field"),
        ("rules:\n  - {layer: app, kind: sever}\n", "unknown kind"),
        ("rules:\n  - {layer: app, name_regex: '('}\n", "invalid regular expression"),
        ("rules:\n  - {layer: app, attributes: [a]}\n", "field 'attributes'"),
        ("rules:\n  - {layer: app, attributes: {a: {re: x}}}\n", "regex"),
        ("rules: {layer: app}\n", "'rules' must be a list"),
        ("sidecar: [db]\n", "'sidecar' must be a mapping"),
        ("rulez: []\n", "unknown top-level key"),
    ],
)
def test_bad_rules_files_raise_one_line(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(RulesError) as info:
        load_rules(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and needle in message, message


def test_missing_rules_file() -> None:
    with pytest.raises(RulesError, match="cannot read rules file"):
        load_rules("/nonexistent/rules.yaml")


def test_rules_sidecar_typo_is_an_error(otlp_file: Path, tmp_path: Path) -> None:
    # `sidecar: {container: [db]}` used to replace the built-in sidecar lists with nothing, silently.
    rules = tmp_path / "rules.yaml"
    rules.write_text("sidecar:\n  container: [db]\n")
    one_line_error(run(str(otlp_file), "--rules", str(rules)), "rules.yaml", "sidecar", "container")


def test_a_clients_dns_lookup_is_edge_time_not_an_external_call() -> None:
    client = {"tracekit.component": "client"}
    request = span(
        name="GET", kind=SpanKind.CLIENT, service="loadgen", sid="a" * 16, start=0, end=100,
        attrs={**client, "server.address": "shop.example.com", "network.peer.address": "198.18.100.10"},
    )  # fmt: skip
    lookup = span(
        name="DNS A", kind=SpanKind.CLIENT, service="loadgen", sid="b" * 16, parent="a" * 16, start=0, end=10,
        attrs={**client, "dns.question.name": "shop.example.com", "server.address": "198.18.200.53"},
    )  # fmt: skip
    app = span(
        name="GET /", kind=SpanKind.SERVER, service="shop", sid="c" * 16, parent="a" * 16, start=20, end=90,
        res=K8S, attrs={"http.request.method": "GET"},
    )  # fmt: skip
    tree = run_checked(Trace(request.trace_id, [request, lookup, app]))
    assert tree.attribution == {"edge": 30, "app": 70}

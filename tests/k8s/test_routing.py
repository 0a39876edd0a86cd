"""Routing semantics as the Ingress and Gateway API specs state them (pure functions, no I/O)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.k8s.fakeapi import httproute, ingress, route_rule, rule, service
from tracekit import attributes as a
from tracekit.k8s.routing import (
    RoutingTable,
    normalize_host,
    resolve_httproute,
    resolve_ingress,
    service_selects,
)

# The examples table of the Ingress spec ("Examples" under "Path types"), one Ingress per case.
SPEC_TABLE = [
    ("Prefix", "/", "/aaa/bbb", True),
    ("Prefix", "/foo", "/foo", True),
    ("Prefix", "/foo/", "/foo", True),
    ("Prefix", "/foo", "/foo/", True),
    ("Exact", "/foo", "/foo", True),
    ("Exact", "/foo", "/bar", False),
    ("Exact", "/foo", "/foo/", False),
    ("Exact", "/foo/", "/foo", False),
    ("Prefix", "/aaa/bb", "/aaa/bbb", False),
    ("Prefix", "/aaa/bbb", "/aaa/bbb", True),
    ("Prefix", "/aaa/bbb/", "/aaa/bbb", True),
    ("Prefix", "/aaa/bbb", "/aaa/bbb/", True),
    ("Prefix", "/aaa/bbb", "/aaa/bbb/ccc", True),
    ("Prefix", "/aaa/bbb", "/aaa/bbbxyz", False),
    ("ImplementationSpecific", "/aaa", "/aaa/ccc", True),
]


@pytest.mark.parametrize(("path_type", "rule_path", "request_path", "matches"), SPEC_TABLE)
def test_ingress_spec_examples(path_type: str, rule_path: str, request_path: str, matches: bool) -> None:
    ing = ingress("one", [rule("h.example.com", (rule_path, path_type, "svc"))])
    got = resolve_ingress([ing], "h.example.com", request_path)
    assert (got is not None) is matches


def test_longest_prefix_wins_and_exact_beats_prefix_at_equal_length() -> None:
    ing = ingress(
        "multi",
        [
            rule(
                "h.example.com",
                ("/", "Prefix", "root"),
                ("/aaa", "Prefix", "aaa"),
                ("/aaa/bbb", "Prefix", "bbb-prefix"),
                ("/aaa/bbb", "Exact", "bbb-exact"),
            )
        ],
    )
    assert resolve_ingress([ing], "h.example.com", "/aaa/bbb").service_name == "bbb-exact"
    assert resolve_ingress([ing], "h.example.com", "/aaa/bbb/c").service_name == "bbb-prefix"
    assert resolve_ingress([ing], "h.example.com", "/aaa/x").service_name == "aaa"
    assert resolve_ingress([ing], "h.example.com", "/zzz").service_name == "root"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("foo.bar.com", "exact"),
        ("a.bar.com", "wild"),
        ("A.Bar.COM:8443", "wild"),  # case and port do not matter
        ("a.b.bar.com", "any"),  # the wildcard covers exactly one label
        ("bar.com", "any"),
        ("other.org", "any"),
    ],
)
def test_host_tiers_exact_then_wildcard_then_hostless(host: str, expected: str) -> None:
    ing = ingress(
        "hosts",
        [
            rule("foo.bar.com", ("/", "Prefix", "exact")),
            rule("*.bar.com", ("/", "Prefix", "wild")),
            rule(None, ("/", "Prefix", "any")),
        ],
    )
    assert resolve_ingress([ing], host, "/x").service_name == expected


def test_more_specific_host_without_matching_path_falls_through() -> None:
    ing = ingress(
        "fall", [rule("foo.bar.com", ("/api", "Prefix", "api")), rule(None, ("/", "Prefix", "any"))]
    )
    assert resolve_ingress([ing], "foo.bar.com", "/api/v1").service_name == "api"
    assert resolve_ingress([ing], "foo.bar.com", "/web").service_name == "any"


def test_default_backend_and_no_match() -> None:
    with_default = ingress("d", [rule("h.example.com", ("/api", "Exact", "api"))], default="fallback")
    got = resolve_ingress([with_default], "other.example.com", "/")
    assert got is not None and got.default_backend and got.service_name == "fallback" and got.path is None
    plain = ingress("p", [rule("h.example.com", ("/api", "Exact", "api"))])
    assert resolve_ingress([plain], "other.example.com", "/") is None
    assert resolve_ingress([plain], "h.example.com", "/api/x") is None
    assert resolve_ingress([], "h.example.com", "/") is None


def test_oldest_ingress_wins_a_tie() -> None:
    newer = ingress(
        "a-newer", [rule("h.example.com", ("/", "Prefix", "new"))], created="2024-02-01T00:00:00Z"
    )
    older = ingress(
        "z-older", [rule("h.example.com", ("/", "Prefix", "old"))], created="2024-01-01T00:00:00Z"
    )
    assert resolve_ingress([newer, older], "h.example.com", "/").name == "z-older"


def test_named_port_is_resolved_through_the_service() -> None:
    ing = ingress("n", [rule("h.example.com", ("/", "Prefix", "web"), port="http")])
    table = RoutingTable([ing], services=[service("web", {"app": "x"})], pod_labels={"app": "x"})
    attrs = table.attributes("h.example.com", "/")
    assert attrs[a.BACKEND_SERVICE_PORT] == 80
    assert attrs[a.BACKEND_SELECTS_POD] is True


def test_httproute_hostnames_paths_and_gateway() -> None:
    routes = [
        httproute(
            "api",
            ["shop.example.com"],
            [
                route_rule(("PathPrefix", "/api"), backend="api-svc"),
                route_rule(("Exact", "/"), backend="home"),
            ],
        ),
        httproute("wild", ["*.example.com"], [route_rule(("PathPrefix", "/"), backend="wild-svc")]),
        httproute("all", [], [route_rule(("PathPrefix", "/"), backend="catch-all")], gateway="other-gw"),
    ]
    m = resolve_httproute(routes, "shop.example.com", "/api/items")
    assert (m.name, m.path, m.path_type, m.service_name, m.gateway) == (
        "api", "/api", "PathPrefix", "api-svc", "shop-gw",
    )  # fmt: skip
    assert resolve_httproute(routes, "shop.example.com", "/").service_name == "home"
    # The exact hostname has no rule for /other: the wildcard route (Gateway API: suffix match) takes it.
    assert resolve_httproute(routes, "shop.example.com", "/other").name == "wild"
    assert resolve_httproute(routes, "a.b.example.com", "/").name == "wild"
    assert resolve_httproute(routes, "example.org", "/x").gateway == "other-gw"
    assert resolve_httproute(routes[:1], "shop.example.com", "/apix") is None
    assert resolve_httproute(routes[:1], "elsewhere.org", "/api") is None


def test_httproute_without_matches_defaults_to_prefix_slash() -> None:
    route = httproute("r", ["h.example.com"], [{"backendRefs": [{"name": "svc", "port": 8080}]}])
    m = resolve_httproute([route], "h.example.com", "/anything")
    assert (m.path, m.path_type, m.service_name, m.service_port) == ("/", "PathPrefix", "svc", 8080)


@pytest.mark.parametrize(
    ("selector", "labels", "selects"),
    [
        ({"app": "shop"}, {"app": "shop", "tier": "web"}, True),
        ({"app": "shop", "tier": "web"}, {"app": "shop"}, False),
        ({"app": "shop"}, {"app": "other"}, False),
        ({}, {"app": "shop"}, False),  # no selector: endpoints are managed by hand
        (None, {"app": "shop"}, False),
    ],
)
def test_service_selects(selector: dict | None, labels: dict, selects: bool) -> None:
    assert service_selects(service("s", selector), labels) is selects


def test_normalize_host() -> None:
    assert normalize_host("Shop.Example.com:8080") == "shop.example.com"
    assert normalize_host("[::1]:8080") == "[::1]"
    assert normalize_host("example.com.") == "example.com"
    assert normalize_host(None) == ""


def test_table_attributes_when_nothing_matches() -> None:
    assert RoutingTable().attributes("h", "/") == {a.ROUTE_MATCHED: False}


# --- cross-check against a brute-force reading of the spec ------------------------------------

_segments = st.lists(st.sampled_from(["a", "b", "ab"]), min_size=0, max_size=3)


def _reference(paths: list[tuple[str, str]], request: str) -> set[int]:
    """Indexes of the best rules by the spec's words: split into elements, longest wins, Exact first."""
    req = [s for s in request.split("/") if s]
    candidates = []
    for i, (path, path_type) in enumerate(paths):
        elems = [s for s in path.split("/") if s]
        if path_type == "Exact":
            ok = path == request
            length = len(path)
        else:
            ok = req[: len(elems)] == elems
            length = len(path.rstrip("/"))
        if ok:
            candidates.append((length, path_type == "Exact", i))
    if not candidates:
        return set()
    best = max((c[0], c[1]) for c in candidates)
    return {c[2] for c in candidates if (c[0], c[1]) == best}


@settings(max_examples=300, deadline=None)
@given(
    rules=st.lists(
        st.tuples(_segments, st.booleans(), st.sampled_from(["Exact", "Prefix"])), min_size=1, max_size=6
    ),
    request=st.tuples(_segments, st.booleans()),
)
def test_matches_a_brute_force_reading_of_the_spec(rules, request) -> None:
    paths = [("/" + "/".join(segs) + ("/" if slash and segs else ""), kind) for segs, slash, kind in rules]
    req = "/" + "/".join(request[0]) + ("/" if request[1] and request[0] else "")
    ing = ingress("p", [rule("h", *[(p, t, f"svc-{i}") for i, (p, t) in enumerate(paths)])])
    got = resolve_ingress([ing], "h", req)
    expected = _reference(paths, req)
    if not expected:
        assert got is None
    else:
        assert got is not None and int(got.service_name.removeprefix("svc-")) in expected

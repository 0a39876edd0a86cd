"""shop.example.com/ routes to the Service that selects the demo pods: checked with the library's matcher.

``tracekit.k8s.routing`` is what the library uses at run time to say which Ingress rule or HTTPRoute a
request came through; running it over the rendered manifests proves the kit and the library agree.
"""

from __future__ import annotations

import pytest
import yaml

from tests.deploy.kit import DEPLOY, Obj, container, find, one, render
from tracekit.k8s.routing import RouteMatch, resolve_httproute, resolve_ingress, service_selects

HOST = "shop.example.com"
INGRESS_TARGETS = ["deploy", "traefik", "traefik-k3s", "ingress-nginx"]


def _check_backend(objects: list[Obj], match: RouteMatch | None) -> None:
    """The match targets a Service in the route's namespace that selects the shop pods on port http."""
    assert match is not None, f"nothing routes {HOST}/"
    assert (match.service_name, match.service_port) == ("web-service", 80)
    service = one(objects, "Service", match.service_name, match.namespace)
    deployment = one(objects, "Deployment", "shop", match.namespace)
    pod = deployment["spec"]["template"]
    assert service_selects(service, pod["metadata"]["labels"])
    # ... and the Service port lands on the app container's port.
    (port,) = [p for p in service["spec"]["ports"] if p["port"] == match.service_port]
    app_ports = container(pod["spec"], "app")["ports"]
    assert any(port["targetPort"] in (p["containerPort"], p["name"]) for p in app_ports)
    # No other Deployment's pods are selected by that Service.
    others = [
        d for d in find(objects, "Deployment", namespace=match.namespace)
        if d is not deployment and service_selects(service, d["spec"]["template"]["metadata"]["labels"])
    ]  # fmt: skip
    assert not others


@pytest.mark.parametrize("target", INGRESS_TARGETS)
@pytest.mark.parametrize("path", ["/", "/products", "/cart/items"])
def test_ingress_routes_the_shop_host_to_the_shop_pods(target: str, path: str) -> None:
    objects = render(target)
    match = resolve_ingress(find(objects, "Ingress"), HOST, path)
    assert match is not None and match.kind == "Ingress" and match.name == "shop"
    assert (match.host, match.path, match.path_type) == (HOST, "/", "Prefix")
    assert not match.default_backend
    _check_backend(objects, match)


@pytest.mark.parametrize("target", INGRESS_TARGETS)
def test_other_hosts_are_not_routed(target: str) -> None:
    assert resolve_ingress(find(render(target), "Ingress"), "other.example.com", "/") is None


@pytest.mark.parametrize("path", ["/", "/products"])
def test_httproute_routes_the_shop_host_to_the_shop_pods(path: str) -> None:
    objects = render("gateway-api")
    match = resolve_httproute(find(objects, "HTTPRoute"), HOST, path)
    assert match is not None and match.kind == "HTTPRoute" and match.name == "shop"
    assert (match.host, match.path, match.path_type) == (HOST, "/", "PathPrefix")
    _check_backend(objects, match)
    # The route is attached to a Gateway listener that accepts it.
    gateway = one(objects, "Gateway", str(match.gateway), match.namespace)
    route = one(objects, "HTTPRoute", "shop", match.namespace)
    (parent,) = route["spec"]["parentRefs"]
    (listener,) = [item for item in gateway["spec"]["listeners"] if item["name"] == parent["sectionName"]]
    assert listener["hostname"] == HOST and listener["protocol"] == "HTTP"
    assert listener["allowedRoutes"]["namespaces"]["from"] == "Same"
    assert resolve_httproute(find(objects, "HTTPRoute"), "other.example.com", "/") is None


def test_the_files_the_demo_reads_route_on_their_own() -> None:
    # The demo's local ingress emulator reads these two files directly (COMMON.md).
    ingress = yaml.safe_load((DEPLOY / "base" / "ingress.yaml").read_text())
    service = yaml.safe_load((DEPLOY / "base" / "service.yaml").read_text())
    match = resolve_ingress([ingress], HOST, "/")
    assert match is not None and match.service_name == service["metadata"]["name"] == "web-service"
    assert service_selects(service, {"app.kubernetes.io/name": "shop"})
    (port,) = service["spec"]["ports"]
    assert (port["name"], port["port"], port["targetPort"]) == ("http", 80, 8080)


def test_the_demo_fallback_copies_match_the_kit() -> None:
    # An installed package without deploy/ uses built-in copies of these two files: keep them equal.
    from demo_app import cluster

    ingress = yaml.safe_load((DEPLOY / "base" / "ingress.yaml").read_text())
    service = yaml.safe_load((DEPLOY / "base" / "service.yaml").read_text())
    assert ingress == cluster.FALLBACK_INGRESS
    assert service == cluster.FALLBACK_SERVICE

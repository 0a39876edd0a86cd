"""Every kustomize target renders, and every object it renders validates strictly against a schema."""

from __future__ import annotations

import copy

import pytest
import yaml

from tests.deploy.kit import (
    CLUSTER_SCOPED,
    DEPLOY,
    K8S_VERSIONS,
    TARGETS,
    find,
    ident,
    one,
    pod_specs,
    render,
    validation_error,
)


@pytest.mark.parametrize("target", TARGETS)
def test_target_renders_named_objects_once(target: str) -> None:
    objects = render(target)
    assert objects, f"{target} rendered nothing"
    seen: set[str] = set()
    for obj in objects:
        assert obj.get("apiVersion") and obj.get("kind") and (obj.get("metadata") or {}).get("name"), obj
        assert ident(obj) not in seen, f"{target}: {ident(obj)} rendered twice"
        seen.add(ident(obj))


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("target", TARGETS)
def test_every_object_validates_strictly(target: str, version: str) -> None:
    errors = [f"{ident(obj)}: {err}" for obj in render(target) if (err := validation_error(obj, version))]
    assert not errors, f"{target} against Kubernetes {version}:\n" + "\n".join(errors)


@pytest.mark.parametrize("target", TARGETS)
def test_namespaced_objects_name_their_namespace(target: str) -> None:
    # `kubectl apply -k` would put a namespace-less object wherever the user's context points.
    for obj in render(target):
        namespace = obj["metadata"].get("namespace")
        if obj["kind"] in CLUSTER_SCOPED:
            assert namespace is None, f"{ident(obj)} is cluster-scoped"
        else:
            assert namespace, f"{target}: {ident(obj)} has no namespace"


# --- the validator itself must be strict: these guard against a silently lax setup --------------


def test_unknown_kind_is_an_error_not_a_skip() -> None:
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "x"}}
    assert "no schema" in (validation_error(widget, K8S_VERSIONS[0]) or "")


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_unknown_field_in_a_builtin_kind_is_an_error(version: str) -> None:
    deployment = copy.deepcopy(one(render("deploy"), "Deployment", "shop"))
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    assert "imagePullPolcy" in (validation_error(deployment, version) or "")


def test_unknown_field_in_a_custom_resource_is_an_error() -> None:
    route = copy.deepcopy(one(render("gateway-api"), "HTTPRoute", "shop"))
    route["spec"]["rules"][0]["backendRefs"][0]["prot"] = 80
    assert "prot" in (validation_error(route, K8S_VERSIONS[0]) or "")


def test_gatewayclass_file_validates() -> None:
    # Applied by hand once per cluster (not part of the overlay), validated all the same.
    gatewayclass = yaml.safe_load((DEPLOY / "overlays" / "gateway-api" / "gatewayclass.yaml").read_text())
    assert validation_error(gatewayclass, K8S_VERSIONS[0]) is None


# --- what each target contains ------------------------------------------------------------------

COMMON = [
    ("Namespace", "shop", None),
    ("Namespace", "observability", None),
    ("ServiceAccount", "shop", "shop"),
    ("Role", "tracekit-reader", "shop"),
    ("RoleBinding", "tracekit-reader", "shop"),
    ("Deployment", "shop", "shop"),
    ("Service", "web-service", "shop"),
    ("HorizontalPodAutoscaler", "shop", "shop"),
    ("PodDisruptionBudget", "shop", "shop"),
    ("Deployment", "otel-collector", "observability"),
    ("Service", "otel-collector", "observability"),
    ("ClusterRole", "tracekit-otel-collector", None),
    ("ClusterRoleBinding", "tracekit-otel-collector", None),
    ("Deployment", "jaeger", "observability"),
    ("Service", "jaeger-collector", "observability"),
    ("Service", "jaeger-query", "observability"),
]


@pytest.mark.parametrize("target", TARGETS)
def test_target_has_the_whole_stack(target: str) -> None:
    objects = render(target)
    for kind, name, namespace in COMMON:
        one(objects, kind, name, namespace)
    ingresses = find(objects, "Ingress")
    ingress = ("Ingress", "shop", "shop")
    extra = {
        "deploy": [ingress],
        "traefik": [ingress],
        "traefik-k3s": [ingress, ("HelmChartConfig", "traefik", "kube-system")],
        "ingress-nginx": [ingress, ("ConfigMap", "ingress-nginx-controller", "ingress-nginx")],
        "gateway-api": [
            ("Gateway", "shop", "shop"),
            ("HTTPRoute", "shop", "shop"),
            ("EnvoyProxy", "shop-tracing", "shop"),
            ("ReferenceGrant", "shop-tracing-to-collector", "observability"),
        ],
    }[target]
    for kind, name, namespace in extra:
        one(objects, kind, name, namespace)
    if target == "gateway-api":
        assert not ingresses, "the gateway-api overlay replaces the Ingress with an HTTPRoute"
    expected_class = {
        "deploy": None,
        "traefik": "traefik",
        "traefik-k3s": "traefik",
        "ingress-nginx": "nginx",
    }
    for ingress in ingresses:
        assert ingress["spec"].get("ingressClassName") == expected_class[target]


def test_k3s_helmchartconfig_carries_the_helm_values() -> None:
    # One set of Traefik values, two ways to install them (helm -f, or k3s' HelmChartConfig).
    helm_values = yaml.safe_load((DEPLOY / "overlays" / "traefik" / "helm-values.yaml").read_text())
    config = one(render("traefik-k3s"), "HelmChartConfig", "traefik", "kube-system")
    assert yaml.safe_load(config["spec"]["valuesContent"]) == helm_values
    otlp = helm_values["tracing"]["otlp"]
    assert otlp["enabled"] and otlp["grpc"]["enabled"] and otlp["grpc"]["insecure"]
    assert helm_values["tracing"]["sampleRate"] == 1.0


# --- references between rendered objects resolve ------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_references_resolve(target: str) -> None:
    objects = render(target)
    for workload, spec in pod_specs(objects):
        ns = workload["metadata"]["namespace"]
        if spec.get("serviceAccountName"):
            one(objects, "ServiceAccount", spec["serviceAccountName"], ns)
        for volume in spec.get("volumes") or []:
            if "configMap" in volume:
                one(objects, "ConfigMap", volume["configMap"]["name"], ns)
        for c in spec["containers"]:
            for env in c.get("env") or []:
                ref = (env.get("valueFrom") or {}).get("configMapKeyRef")
                if ref:
                    cm = one(objects, "ConfigMap", ref["name"], ns)
                    assert ref["key"] in cm["data"], f"{ident(workload)}: {env['name']} -> missing key"
            mounted = {v["name"] for v in spec.get("volumes") or []}
            for mount in c.get("volumeMounts") or []:
                assert mount["name"] in mounted, f"{ident(workload)}/{c['name']}: no volume {mount['name']}"
        # Selector and template agree (the API server rejects a Deployment where they do not).
        selector = workload["spec"]["selector"]["matchLabels"]
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), ident(workload)
    for binding in find(objects, "RoleBinding") + find(objects, "ClusterRoleBinding"):
        ref = binding["roleRef"]
        one(
            objects,
            ref["kind"],
            ref["name"],
            binding["metadata"].get("namespace") if ref["kind"] == "Role" else None,
        )
        for subject in binding["subjects"]:
            one(objects, subject["kind"], subject["name"], subject["namespace"])
    for hpa in find(objects, "HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        target_obj = one(objects, ref["kind"], ref["name"], hpa["metadata"]["namespace"])
        assert "replicas" not in target_obj["spec"], f"{ident(target_obj)}: the HPA owns the replica count"
    for pdb in find(objects, "PodDisruptionBudget"):
        ns = pdb["metadata"]["namespace"]
        wanted = pdb["spec"]["selector"]["matchLabels"].items()
        selected = [
            w
            for w, _ in pod_specs(objects)
            if w["metadata"]["namespace"] == ns
            and wanted <= w["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert selected, f"{ident(pdb)} selects no pods"
    for gateway in find(objects, "Gateway"):
        ref = (gateway["spec"].get("infrastructure") or {}).get("parametersRef")
        if ref:
            one(objects, ref["kind"], ref["name"], gateway["metadata"]["namespace"])

"""collector/config.yaml is a well-formed collector configuration, and every hop to and from it lines up.

Offline we cannot run ``otelcol-contrib validate``; instead: the YAML parses, every pipeline names
components that are defined and of known types, the processors are in the order that works, and every
address (the SDKs', the ingress controllers', the exporters') points at a Service port that exists.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy.kit import ROOT, TARGETS, Obj, container, find, one, render

CONFIG_PATH = ROOT / "collector" / "config.yaml"

#: Component types of the contrib distribution that this kit may use (new lower_snake_case names).
KNOWN = {
    "receivers": {"otlp", "jaeger", "zipkin", "prometheus", "filelog", "hostmetrics", "kubeletstats"},
    "processors": {
        "batch", "memory_limiter", "k8s_attributes", "resource", "attributes", "resourcedetection",
        "filter", "transform", "tail_sampling", "probabilistic_sampler",
    },
    "exporters": {"otlp_grpc", "otlp_http", "file", "debug", "nop"},
    "extensions": {"health_check", "pprof", "zpages", "file_storage"},
    "connectors": {"spanmetrics", "forward", "servicegraph"},
}  # fmt: skip

#: Old names that still load but log a deprecation warning on every start (the receiver stays `otlp`).
DEPRECATED = {
    "exporters": {"otlp": "otlp_grpc", "otlphttp": "otlp_http"},
    "processors": {"k8sattributes": "k8s_attributes"},
}


@pytest.fixture(scope="module")
def config() -> Obj:
    loaded = yaml.safe_load(CONFIG_PATH.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _type(component_id: str) -> str:
    return component_id.split("/", 1)[0]


def _host_port(endpoint: str) -> tuple[str, int]:
    parts = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}")
    assert parts.hostname and parts.port, endpoint
    return parts.hostname, parts.port


def _service_port(objects: list[Obj], host: str, port: int, default_ns: str) -> Obj:
    """The Service port a cluster DNS name (svc, svc.ns, svc.ns.svc[.cluster.local]) and port reach."""
    labels = host.split(".")
    name, namespace = labels[0], labels[1] if len(labels) > 1 else default_ns
    assert len(labels) <= 2 or labels[2] == "svc", f"{host} is not a Service DNS name"
    service = one(objects, "Service", name, namespace)
    ports = [p for p in service["spec"]["ports"] if p["port"] == port]
    assert ports, f"Service {namespace}/{name} has no port {port}"
    return ports[0]


def test_config_has_only_known_sections(config: Obj) -> None:
    assert set(config) <= {*KNOWN, "service"}


def test_pipelines_name_defined_components_of_known_types(config: Obj) -> None:
    used: dict[str, set[str]] = {section: set() for section in KNOWN}
    pipelines = config["service"]["pipelines"]
    assert "traces" in pipelines
    for pipeline_id, pipeline in pipelines.items():
        assert _type(pipeline_id) in ("traces", "metrics", "logs", "profiles"), pipeline_id
        assert pipeline.get("receivers") and pipeline.get("exporters"), pipeline_id
        for section in ("receivers", "processors", "exporters"):
            for component in pipeline.get(section) or []:
                assert component in (config.get(section) or {}), f"{pipeline_id}: {component} not defined"
                used[section].add(component)
    for component in config["service"].get("extensions") or []:
        assert component in (config.get("extensions") or {}), f"extension {component} not defined"
        used["extensions"].add(component)
    for section in KNOWN:
        for component in config.get(section) or {}:
            kind = _type(component)
            renamed = DEPRECATED.get(section, {}).get(kind)
            assert renamed is None, f"{section}: {component} is a deprecated name, use {renamed}"
            assert kind in KNOWN[section], f"{section}: unknown component type {kind!r}"
            assert component in used[section], f"{section}: {component} is defined but unused"


def test_trace_processors_run_in_a_working_order(config: Obj) -> None:
    processors = [_type(p) for p in config["service"]["pipelines"]["traces"]["processors"]]
    assert processors[0] == "memory_limiter", "memory_limiter must come first"
    assert processors[-1] == "batch", "batch comes last"
    # k8s_attributes reads the client address of the connection, which batching discards.
    assert processors.index("k8s_attributes") < processors.index("batch")


def test_k8s_attributes_associates_by_pod_uid_and_connection(config: Obj) -> None:
    proc = config["processors"]["k8s_attributes"]
    sources = [s for assoc in proc["pod_association"] for s in assoc["sources"]]
    assert {"from": "resource_attribute", "name": "k8s.pod.uid"} in sources
    assert {"from": "connection"} in sources
    metadata = set(proc["extract"]["metadata"])
    assert {"k8s.deployment.name", "k8s.replicaset.name", "k8s.node.name", "k8s.pod.uid"} <= metadata
    for label in proc["extract"]["labels"]:
        assert label["tag_name"] == f"k8s.pod.label.{label['key']}", "semantic-convention label keys"


def test_receivers_and_health_listen_on_the_pod_network(config: Obj) -> None:
    # Since collector v0.104 endpoints default to localhost, which neither Services nor probes reach.
    objects = render("deploy")
    spec = one(objects, "Deployment", "otel-collector", "observability")["spec"]["template"]["spec"]
    ports = {p["name"]: p["containerPort"] for p in container(spec, "otel-collector")["ports"]}
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == f"0.0.0.0:{ports['otlp-grpc']}"
    assert protocols["http"]["endpoint"] == f"0.0.0.0:{ports['otlp-http']}"
    assert config["extensions"]["health_check"]["endpoint"] == f"0.0.0.0:{ports['health']}"
    probe = container(spec, "otel-collector")["readinessProbe"]["httpGet"]
    assert probe["port"] == "health"
    service = one(objects, "Service", "otel-collector", "observability")
    assert {(p["port"], p["targetPort"]) for p in service["spec"]["ports"]} == {
        (4317, "otlp-grpc"),
        (4318, "otlp-http"),
    }


def test_collector_mounts_the_rendered_config(config: Obj) -> None:
    objects = render("deploy")
    spec = one(objects, "Deployment", "otel-collector", "observability")["spec"]["template"]["spec"]
    c = container(spec, "otel-collector")
    (arg,) = [a for a in c["args"] if a.startswith("--config=")]
    path = arg.removeprefix("--config=")
    mount = next(m for m in c["volumeMounts"] if path.startswith(m["mountPath"].rstrip("/") + "/"))
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    configmap = one(objects, "ConfigMap", volume["configMap"]["name"], "observability")
    assert yaml.safe_load(configmap["data"][path.rsplit("/", 1)[1]]) == config


def test_file_exporter_writes_rotated_otlp_json_to_a_shared_volume(config: Obj) -> None:
    exporter = config["exporters"]["file/traces"]
    assert exporter["format"] == "json"
    assert exporter["rotation"]["max_megabytes"] > 0 and exporter["rotation"]["max_backups"] > 0
    spec = one(render("deploy"), "Deployment", "otel-collector", "observability")["spec"]["template"]["spec"]
    directory = exporter["path"].rsplit("/", 1)[0]
    # The collector writes there, and the tar-carrying sidecar that `kubectl cp` uses can read it.
    for name in ("otel-collector", "files"):
        mounts = {m["mountPath"]: m for m in container(spec, name)["volumeMounts"]}
        assert directory in mounts, f"{name} does not mount {directory}"
    volume = next(v for v in spec["volumes"] if v["name"] == mounts[directory]["name"])
    assert "emptyDir" in volume


def test_jaeger_exporter_reaches_jaeger_over_otlp_grpc(config: Obj) -> None:
    objects = render("deploy")
    exporter = config["exporters"]["otlp_grpc/jaeger"]
    assert exporter["tls"]["insecure"] is True
    port = _service_port(objects, *_host_port(exporter["endpoint"]), default_ns="observability")
    jaeger = one(objects, "Deployment", "jaeger", "observability")["spec"]["template"]["spec"]
    ports = {p["name"]: p["containerPort"] for p in container(jaeger, "jaeger")["ports"]}
    assert ports[port["targetPort"]] == 4317


# --- everything that sends spans sends them to a collector port that speaks its protocol ---------


def test_demo_containers_export_to_the_collector_otlp_http_port() -> None:
    objects = render("deploy")
    spec = one(objects, "Deployment", "shop", "shop")["spec"]["template"]["spec"]
    for c in spec["containers"]:
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
        port = _service_port(objects, *_host_port(env["OTEL_EXPORTER_OTLP_ENDPOINT"]), default_ns="shop")
        assert port["targetPort"] == "otlp-http", c["name"]
        assert env["OTEL_PROPAGATORS"].split(",")[0] == "tracecontext"
        # The collector has a traces pipeline only.
        assert env["OTEL_METRICS_EXPORTER"] == env["OTEL_LOGS_EXPORTER"] == "none"


def test_ingress_nginx_exports_to_the_collector_grpc_port() -> None:
    objects = render("ingress-nginx")
    data = one(objects, "ConfigMap", "ingress-nginx-controller", "ingress-nginx")["data"]
    assert data["enable-opentelemetry"] == "true"
    assert data["opentelemetry-trust-incoming-span"] == "true"
    assert data["otel-sampler"] in ("AlwaysOn", "TraceIdRatioBased")
    assert all(isinstance(v, str) for v in data.values())
    port = _service_port(
        objects, data["otlp-collector-host"], int(data["otlp-collector-port"]), "ingress-nginx"
    )
    assert port["targetPort"] == "otlp-grpc"


@pytest.mark.parametrize("target", ["traefik-k3s"])
def test_traefik_exports_to_the_collector_grpc_port(target: str) -> None:
    objects = render(target)
    values = yaml.safe_load(
        one(objects, "HelmChartConfig", "traefik", "kube-system")["spec"]["valuesContent"]
    )
    grpc = values["tracing"]["otlp"]["grpc"]
    port = _service_port(objects, *_host_port(grpc["endpoint"]), default_ns="kube-system")
    assert port["targetPort"] == "otlp-grpc"


def test_envoy_gateway_exports_to_the_collector_grpc_port() -> None:
    objects = render("gateway-api")
    provider = one(objects, "EnvoyProxy", "shop-tracing", "shop")["spec"]["telemetry"]["tracing"]["provider"]
    assert provider["type"] == "OpenTelemetry"
    (ref,) = provider["backendRefs"]
    service = one(objects, "Service", ref["name"], ref["namespace"])
    (port,) = [p for p in service["spec"]["ports"] if p["port"] == ref["port"]]
    assert port["targetPort"] == "otlp-grpc"
    # The reference crosses namespaces: a ReferenceGrant in the Service's namespace allows it.
    grants = find(objects, "ReferenceGrant", namespace=ref["namespace"])
    assert any(
        {"group": "gateway.envoyproxy.io", "kind": "EnvoyProxy", "namespace": "shop"} in g["spec"]["from"]
        and {"group": "", "kind": "Service", "name": ref["name"]} in g["spec"]["to"]
        for g in grants
    )


@pytest.mark.parametrize("target", TARGETS)
def test_one_collector_config_everywhere(target: str) -> None:
    # Every target ships the same generated ConfigMap (same content hash).
    names = {c["metadata"]["name"] for c in find(render(target), "ConfigMap", namespace="observability")}
    assert names == {
        c["metadata"]["name"] for c in find(render("deploy"), "ConfigMap", namespace="observability")
    }

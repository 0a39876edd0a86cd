"""JSON Schemas for the custom resources the overlays render (kubernetes-validate knows built-in kinds only).

Why hand-written: no package on our registries ships the Gateway API, k3s or Envoy Gateway CRD schemas
for Python, and an unknown kind must fail validation rather than pass unchecked. Each schema is a strict
*subset* of the upstream CRD's openAPIV3Schema: the fields kept carry the upstream types, enums, bounds
and required lists, and every object says ``additionalProperties: false``, so a misspelt or misplaced
field fails as it would against the real CRD. A field the upstream CRD has but these schemas leave out
fails too: add it here (from the CRD) when a manifest starts using it.

Sources: Gateway API v1.4 standard channel (gateway.networking.k8s.io_gateways.yaml, _httproutes.yaml,
_gatewayclasses.yaml, _referencegrants.yaml), k3s helm-controller (helm.cattle.io_helmchartconfigs),
Envoy Gateway v1.9 (gateway.envoyproxy.io_envoyproxies.yaml, telemetry.tracing).
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]


def _obj(properties: dict[str, Schema], required: tuple[str, ...] = ()) -> Schema:
    schema: Schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return schema


def _str(max_length: int = 253, pattern: str | None = None, min_length: int = 1) -> Schema:
    schema: Schema = {"type": "string", "minLength": min_length, "maxLength": max_length}
    if pattern:
        schema["pattern"] = pattern
    return schema


def _enum(*values: str) -> Schema:
    return {"type": "string", "enum": list(values)}


_STRING_MAP: Schema = {"type": "object", "additionalProperties": {"type": "string"}}
_PORT: Schema = {"type": "integer", "minimum": 1, "maximum": 65535}
# Gateway API: SectionName / ObjectName / Namespace / Group / Kind / Hostname.
_SECTION_NAME = _str(253, r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_NAMESPACE = _str(63, r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_GROUP: Schema = {"type": "string", "maxLength": 253, "pattern": rf"^$|^{_DNS_SUBDOMAIN}$"}
_KIND = _str(63, r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")
_HOSTNAME = _str(253, r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

_METADATA = _obj(
    {
        "name": _str(253, r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"),
        "namespace": _NAMESPACE,
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
    },
    required=("name",),
)


def _resource(api_version: str, kind: str, spec: Schema, *, namespaced: bool = True) -> Schema:
    metadata = _METADATA
    if namespaced:
        # Rendered manifests must name their namespace: `kubectl apply -k` would otherwise drop a
        # namespaced custom resource into whatever namespace the user's context points at.
        metadata = {**_METADATA, "required": ["name", "namespace"]}
    return _obj(
        {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": metadata,
            "spec": spec,
        },
        required=("apiVersion", "kind", "metadata", "spec"),
    )


# --- Gateway API (gateway.networking.k8s.io/v1, standard channel) ----------------------------

_PARENT_REF = _obj(
    {
        "group": _GROUP,
        "kind": _KIND,
        "namespace": _NAMESPACE,
        "name": _str(253),
        "sectionName": _SECTION_NAME,
        "port": _PORT,
    },
    required=("name",),
)

_BACKEND_REF = _obj(
    {
        "group": _GROUP,
        "kind": _KIND,
        "name": _str(253),
        "namespace": _NAMESPACE,
        "port": _PORT,
        "weight": {"type": "integer", "minimum": 0, "maximum": 1000000},
    },
    required=("name",),
)

_HTTP_ROUTE_MATCH = _obj(
    {
        "path": _obj(
            {
                "type": _enum("Exact", "PathPrefix", "RegularExpression"),
                "value": {"type": "string", "maxLength": 1024},
            }
        ),
        "headers": {"type": "array", "maxItems": 16},
        "queryParams": {"type": "array", "maxItems": 16},
        "method": _enum("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"),
    }
)

HTTPROUTE = _resource(
    "gateway.networking.k8s.io/v1",
    "HTTPRoute",
    _obj(
        {
            "parentRefs": {"type": "array", "maxItems": 32, "items": _PARENT_REF},
            "hostnames": {"type": "array", "maxItems": 16, "items": _HOSTNAME},
            "rules": {
                "type": "array",
                "minItems": 1,
                "maxItems": 16,
                "items": _obj(
                    {
                        "name": _SECTION_NAME,
                        "matches": {"type": "array", "maxItems": 64, "items": _HTTP_ROUTE_MATCH},
                        "filters": {"type": "array", "maxItems": 16},
                        "backendRefs": {"type": "array", "maxItems": 16, "items": _BACKEND_REF},
                        "timeouts": _obj(
                            {"request": {"type": "string"}, "backendRequest": {"type": "string"}}
                        ),
                    }
                ),
            },
        }
    ),
)

_LISTENER = _obj(
    {
        "name": _SECTION_NAME,
        "hostname": _HOSTNAME,
        "port": _PORT,
        "protocol": _str(
            255,
            rf"^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$|{_DNS_SUBDOMAIN}\/[A-Za-z0-9]+$",
        ),
        "tls": {"type": "object"},
        "allowedRoutes": _obj(
            {
                "namespaces": _obj(
                    {"from": _enum("All", "Selector", "Same"), "selector": {"type": "object"}}
                ),
                "kinds": {
                    "type": "array",
                    "maxItems": 8,
                    "items": _obj({"group": _GROUP, "kind": _KIND}, required=("kind",)),
                },
            }
        ),
    },
    required=("name", "port", "protocol"),
)

GATEWAY = _resource(
    "gateway.networking.k8s.io/v1",
    "Gateway",
    _obj(
        {
            "gatewayClassName": _str(253),
            "listeners": {"type": "array", "minItems": 1, "maxItems": 64, "items": _LISTENER},
            "addresses": {"type": "array", "maxItems": 16},
            "infrastructure": _obj(
                {
                    "labels": _STRING_MAP,
                    "annotations": _STRING_MAP,
                    "parametersRef": _obj(
                        {"group": _GROUP, "kind": _KIND, "name": _str(253)},
                        required=("group", "kind", "name"),
                    ),
                }
            ),
        },
        required=("gatewayClassName", "listeners"),
    ),
)

GATEWAYCLASS = _resource(
    "gateway.networking.k8s.io/v1",
    "GatewayClass",
    _obj(
        {
            "controllerName": _str(
                253,
                rf"^{_DNS_SUBDOMAIN}\/[A-Za-z0-9\/\-._~%!$&'()*+,;=:]+$",
            ),
            "parametersRef": _obj(
                {"group": _GROUP, "kind": _KIND, "name": _str(253), "namespace": _NAMESPACE},
                required=("group", "kind", "name"),
            ),
            "description": {"type": "string", "maxLength": 64},
        },
        required=("controllerName",),
    ),
    namespaced=False,
)

REFERENCEGRANT = _resource(
    "gateway.networking.k8s.io/v1beta1",
    "ReferenceGrant",
    _obj(
        {
            "from": {
                "type": "array",
                "minItems": 1,
                "maxItems": 16,
                "items": _obj(
                    {"group": _GROUP, "kind": _KIND, "namespace": _NAMESPACE}, ("group", "kind", "namespace")
                ),
            },
            "to": {
                "type": "array",
                "minItems": 1,
                "maxItems": 16,
                "items": _obj({"group": _GROUP, "kind": _KIND, "name": _str(253)}, ("group", "kind")),
            },
        },
        required=("from", "to"),
    ),
)

# --- k3s helm-controller (helm.cattle.io/v1) --------------------------------------------------

HELMCHARTCONFIG = _resource(
    "helm.cattle.io/v1",
    "HelmChartConfig",
    _obj(
        {
            "valuesContent": {"type": "string"},
            "valuesSecrets": {"type": "array"},
            "failurePolicy": {"type": "string"},
        }
    ),
)

# --- Envoy Gateway (gateway.envoyproxy.io/v1alpha1) -------------------------------------------

_TRACING = _obj(
    {
        "samplingRate": {"type": "integer", "minimum": 0, "maximum": 100},
        "samplingFraction": {"type": "object"},
        "customTags": {"type": "object"},
        "tags": _STRING_MAP,
        "provider": _obj(
            {
                "type": _enum("OpenTelemetry", "Zipkin", "Datadog"),
                "host": {"type": "string"},
                "port": {"type": "integer", "minimum": 0},
                "backendRefs": {
                    "type": "array",
                    "maxItems": 16,
                    "items": _obj(
                        {
                            "group": _GROUP,
                            "kind": _KIND,
                            "name": _str(253),
                            "namespace": _NAMESPACE,
                            "port": _PORT,
                            "weight": {"type": "integer", "minimum": 0},
                        },
                        required=("name",),
                    ),
                },
                "backendSettings": {"type": "object"},
                "serviceName": {"type": "string"},
                "zipkin": {"type": "object"},
            },
            required=("type",),
        ),
    },
    required=("provider",),
)

ENVOYPROXY = _resource(
    "gateway.envoyproxy.io/v1alpha1",
    "EnvoyProxy",
    _obj(
        {
            "telemetry": _obj(
                {"tracing": _TRACING, "accessLog": {"type": "object"}, "metrics": {"type": "object"}}
            ),
            "provider": {"type": "object"},
            "logging": {"type": "object"},
            "bootstrap": {"type": "object"},
            "concurrency": {"type": "integer"},
            "shutdown": {"type": "object"},
            "mergeGateways": {"type": "boolean"},
            "routingType": {"type": "string"},
        }
    ),
)

# dask-kubernetes operator (kubernetes.dask.org/v1 daskclusters CRD): the pod specs and the Service spec
# are Kubernetes' own types there (the CRD leaves them open); the tests validate them strictly as a Pod
# and a Service (tests/deploy/test_dask_cluster.py).
DASKCLUSTER = _resource(
    "kubernetes.dask.org/v1",
    "DaskCluster",
    _obj(
        {
            "idleTimeout": {"type": "integer", "minimum": 0},
            "worker": _obj(
                {"replicas": {"type": "integer", "minimum": 0}, "spec": {"type": "object"}},
                required=("spec",),
            ),
            "scheduler": _obj(
                {"spec": {"type": "object"}, "service": {"type": "object"}}, required=("spec",)
            ),
        },
        required=("worker", "scheduler"),
    ),
)

#: (apiVersion, kind) -> JSON Schema, for every custom resource a deploy/ target may render.
CRD_SCHEMAS: dict[tuple[str, str], Schema] = {
    ("gateway.networking.k8s.io/v1", "Gateway"): GATEWAY,
    ("gateway.networking.k8s.io/v1", "GatewayClass"): GATEWAYCLASS,
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): HTTPROUTE,
    ("gateway.networking.k8s.io/v1beta1", "ReferenceGrant"): REFERENCEGRANT,
    ("helm.cattle.io/v1", "HelmChartConfig"): HELMCHARTCONFIG,
    ("gateway.envoyproxy.io/v1alpha1", "EnvoyProxy"): ENVOYPROXY,
    ("kubernetes.dask.org/v1", "DaskCluster"): DASKCLUSTER,
}

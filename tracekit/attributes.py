"""Every attribute key tracekit writes or reads, in one place.

Kubernetes resource attributes follow the OpenTelemetry semantic conventions. Per-request routing
attributes that no convention covers (which Ingress rule or HTTPRoute matched, which Service) use our
own ``tracekit.`` prefix; the README lists each with an example value. Keep this module the single
source: the library, the demo, the analyzer rules and the tests import the names from here.
"""

from __future__ import annotations

# --- OpenTelemetry semantic-convention keys (resource attributes) -----------------------------
K8S_CLUSTER_NAME = "k8s.cluster.name"
K8S_NAMESPACE_NAME = "k8s.namespace.name"
K8S_POD_NAME = "k8s.pod.name"
K8S_POD_UID = "k8s.pod.uid"
K8S_POD_IP = "k8s.pod.ip"
K8S_NODE_NAME = "k8s.node.name"
K8S_CONTAINER_NAME = "k8s.container.name"
K8S_DEPLOYMENT_NAME = "k8s.deployment.name"
K8S_REPLICASET_NAME = "k8s.replicaset.name"
K8S_STATEFULSET_NAME = "k8s.statefulset.name"
K8S_DAEMONSET_NAME = "k8s.daemonset.name"
K8S_JOB_NAME = "k8s.job.name"
K8S_POD_LABEL_PREFIX = "k8s.pod.label."
SERVICE_NAME = "service.name"

# --- tracekit's own per-request routing attributes (SERVER span) ------------------------------
INGRESS_NAME = "tracekit.ingress.name"
INGRESS_CLASS = "tracekit.ingress.class"
INGRESS_RULE_HOST = "tracekit.ingress.rule.host"
INGRESS_RULE_PATH = "tracekit.ingress.rule.path"
INGRESS_RULE_PATH_TYPE = "tracekit.ingress.rule.path_type"
INGRESS_DEFAULT_BACKEND = "tracekit.ingress.default_backend"
HTTPROUTE_NAME = "tracekit.httproute.name"
HTTPROUTE_HOSTNAME = "tracekit.httproute.hostname"
HTTPROUTE_PATH = "tracekit.httproute.path"
HTTPROUTE_PATH_TYPE = "tracekit.httproute.path_type"
GATEWAY_NAME = "tracekit.gateway.name"
BACKEND_SERVICE_NAME = "tracekit.service.name"
BACKEND_SERVICE_PORT = "tracekit.service.port"
BACKEND_SELECTS_POD = "tracekit.service.selects_pod"
ROUTE_MATCHED = "tracekit.route.matched"

# --- tracekit's own component marker, set by the demo's ingress hop and load generator --------
#: Which part of the journey emitted a span: "client", "ingress", "app", "sidecar".
COMPONENT = "tracekit.component"

#: Request and response headers never recorded as span attributes, whatever the configuration (names
#: containing a credential word, see ``tracekit.tracing.redact.SECRET_HEADER_WORDS``, are blocked too).
SECRET_HEADERS = frozenset({
    "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key", "x-auth-token",
    "x-access-token", "x-amz-security-token", "x-goog-api-key", "x-csrf-token", "x-xsrf-token",
    "private-token", "x-vault-token",
})  # fmt: skip

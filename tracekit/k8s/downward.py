"""Pod identity from the Downward API environment variables.

The cluster kit (``deploy/``) sets exactly these variables on every container; the library reads
exactly these. Tests in ``tests/deploy`` compare the Deployment's env against :data:`ENV_VARS`, so
this mapping is the one place to change either side.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from tracekit import attributes as a

#: Downward API (or plain) environment variable -> OpenTelemetry resource attribute key.
ENV_VARS: dict[str, str] = {
    "POD_NAME": a.K8S_POD_NAME,
    "POD_NAMESPACE": a.K8S_NAMESPACE_NAME,
    "POD_UID": a.K8S_POD_UID,
    "POD_IP": a.K8S_POD_IP,
    "NODE_NAME": a.K8S_NODE_NAME,
    "CONTAINER_NAME": a.K8S_CONTAINER_NAME,
    "K8S_CLUSTER_NAME": a.K8S_CLUSTER_NAME,
}

#: Variables a Deployment should set through ``fieldRef`` (the cluster name is plain config, and the
#: container name has no fieldRef: it is set as a literal per container).
FIELD_REFS: dict[str, str] = {
    "POD_NAME": "metadata.name",
    "POD_NAMESPACE": "metadata.namespace",
    "POD_UID": "metadata.uid",
    "POD_IP": "status.podIP",
    "NODE_NAME": "spec.nodeName",
}


def pod_attributes(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the resource attributes the Downward API variables give, skipping unset or empty ones."""
    env = os.environ if environ is None else environ
    return {key: env[var] for var, key in ENV_VARS.items() if env.get(var)}

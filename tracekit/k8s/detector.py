"""OpenTelemetry resource detector for the pod a process runs in.

Registered under the ``opentelemetry_resource_detector`` entry point as ``tracekit_k8s``, so the
zero-code path enables it with ``OTEL_EXPERIMENTAL_RESOURCE_DETECTORS=tracekit_k8s``; ``tracekit.instrument``
and ``tracekit.configure`` use it directly. The SDK builds a fresh detector each time ``Resource.create``
runs, so the work (Downward API env plus one bounded API lookup) is cached in ``metadata.pod_context``.
"""

from __future__ import annotations

import logging

from opentelemetry.sdk.resources import Resource, ResourceDetector

from tracekit.k8s.metadata import pod_context

log = logging.getLogger("tracekit.k8s")


class KubernetesResourceDetector(ResourceDetector):
    """Detect ``k8s.*`` resource attributes: namespace, pod, node, container, owners, pod labels."""

    def detect(self) -> Resource:
        try:
            return Resource(dict(pod_context().attributes))
        except Exception as exc:  # a detector must never break SDK set-up
            log.warning("tracekit: Kubernetes resource detection failed: %s", exc)
            if self.raise_on_error:
                raise
            return Resource.get_empty()

"""The resource detector, loaded as the SDK loads it (the ``opentelemetry_resource_detector`` entry point)."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.resources import Resource

from tests.k8s import fakeapi
from tests.k8s.conftest import seed
from tracekit import attributes as a
from tracekit.k8s.detector import KubernetesResourceDetector


def test_sdk_loads_detector_from_entry_point(
    kube: fakeapi.FakeKubeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(kube)
    monkeypatch.setenv("OTEL_EXPERIMENTAL_RESOURCE_DETECTORS", "tracekit_k8s")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "shop")
    attrs = Resource.create().attributes
    assert attrs["service.name"] == "shop"
    assert attrs[a.K8S_POD_NAME] == "shop-1" and attrs[a.K8S_DEPLOYMENT_NAME] == "shop"
    assert attrs[a.K8S_CONTAINER_NAME] == "app"
    # Resource.create runs every detector again: the API lookup must not be repeated.
    pods_before = kube.count("pods")
    Resource.create()
    assert kube.count("pods") == pods_before == 1


def test_downward_api_only_when_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from tracekit.k8s import metadata

    monkeypatch.setenv("TRACEKIT_K8S", "off")
    monkeypatch.setenv("POD_NAME", "p-1")
    monkeypatch.setenv("POD_NAMESPACE", "ns")
    monkeypatch.setenv("POD_UID", "u-1")
    monkeypatch.setenv("POD_IP", "10.1.2.3")
    monkeypatch.setenv("NODE_NAME", "n-1")
    monkeypatch.setenv("CONTAINER_NAME", "app")
    monkeypatch.setenv("K8S_CLUSTER_NAME", "prod")
    metadata.clear_cache()
    attrs = KubernetesResourceDetector().detect().attributes
    assert dict(attrs) == {
        a.K8S_POD_NAME: "p-1",
        a.K8S_NAMESPACE_NAME: "ns",
        a.K8S_POD_UID: "u-1",
        a.K8S_POD_IP: "10.1.2.3",
        a.K8S_NODE_NAME: "n-1",
        a.K8S_CONTAINER_NAME: "app",
        a.K8S_CLUSTER_NAME: "prod",
    }
    metadata.clear_cache()

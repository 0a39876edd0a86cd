"""deploy/dask: the Dask cluster `tracekit analyze --scheduler` runs on, checked offline.

What `kubectl kustomize deploy/dask` renders must validate strictly (the DaskCluster against the
operator CRD's shape, its pod specs as Pods and its Service spec as a Service, against the
Kubernetes schemas), follow the same policy as the rest of deploy/ (non-root, locked down, requests
and limits, probes, pinned images, bounded scratch space), and start the processes the analysis
expects (one thread per worker, the scheduler port the docs name).
"""

from __future__ import annotations

import pytest

from tests.deploy import test_policy
from tests.deploy.kit import K8S_VERSIONS, Obj, container, ident, one, pod_specs, render, validation_error

TARGET = "dask"


def _cluster() -> Obj:
    return one(render(TARGET), "DaskCluster", "analyze", "tracekit-analyze")


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_object_and_embedded_spec_validates_strictly(version: str) -> None:
    objects = render(TARGET)
    errors = [f"{ident(obj)}: {err}" for obj in objects if (err := validation_error(obj, version))]
    cluster = _cluster()
    meta = {"name": "analyze", "namespace": "tracekit-analyze"}
    embedded = [
        (
            "scheduler pod",
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": meta,
                "spec": cluster["spec"]["scheduler"]["spec"],
            },
        ),
        (
            "worker pod",
            {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": cluster["spec"]["worker"]["spec"]},
        ),
        (
            "scheduler service",
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": meta,
                "spec": cluster["spec"]["scheduler"]["service"],
            },
        ),
    ]
    errors += [f"{what}: {err}" for what, obj in embedded if (err := validation_error(obj, version))]
    assert not errors, "\n".join(errors)
    # The strict schema is not lax: a misplaced field fails.
    broken = {**cluster, "spec": {**cluster["spec"], "workers": {}}}
    assert validation_error(broken, version)


@pytest.mark.parametrize(
    "check",
    [
        test_policy.test_containers_run_as_non_root,
        test_policy.test_containers_are_locked_down,
        test_policy.test_pods_share_nothing_with_the_node,
        test_policy.test_every_container_has_requests_and_limits,
        test_policy.test_every_container_has_readiness_and_liveness_probes,
        test_policy.test_images_are_pinned_by_tag,
        test_policy.test_writable_volumes_are_bounded_emptydirs,
        test_policy.test_rbac_has_no_wildcards_and_reads_only,
        test_policy.test_no_binding_to_admin_roles,
    ],
    ids=lambda check: check.__name__.removeprefix("test_"),
)
def test_same_policy_as_the_rest_of_deploy(check) -> None:
    assert len(list(pod_specs(render(TARGET)))) == 2  # the scheduler's and the workers' pod specs
    check(TARGET)


def test_cluster_runs_what_the_analysis_expects() -> None:
    spec = _cluster()["spec"]
    assert spec["worker"]["replicas"] == 2
    worker = container(spec["worker"]["spec"], "worker")
    args = worker["args"]
    assert args[:2] == ["dask", "worker"]
    # One thread per worker process: the analysis is pure Python, threads would share one GIL.
    assert args[args.index("--nthreads") + 1] == "1"
    limit = worker["resources"]["limits"]["memory"]
    assert limit.endswith("Mi") and int(limit[:-2]) > 1024  # Dask's own 1GiB budget fits inside
    scheduler = container(spec["scheduler"]["spec"], "scheduler")
    assert scheduler["args"] == ["dask", "scheduler"]
    ports = {p["name"]: p["port"] for p in spec["scheduler"]["service"]["ports"]}
    assert ports["tcp-comm"] == 8786
    assert spec["scheduler"]["service"]["type"] == "ClusterIP"  # not exposed outside the cluster
    for pod in (spec["worker"]["spec"], spec["scheduler"]["spec"]):
        assert pod["automountServiceAccountToken"] is False  # neither process talks to the API

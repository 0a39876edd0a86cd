"""This pod's identity: Downward API variables, completed by one bounded lookup of the Kubernetes API.

The lookup (pod labels, owner chain Pod -> ReplicaSet -> Deployment, or the owning StatefulSet,
DaemonSet or Job) happens once per process, at start, in a daemon thread joined with a deadline:
start-up never hangs on a slow or absent API, and a failure costs one warning, never the app.
The result is cached because both the resource detector (called by ``Resource.create``, possibly several
times) and the routing watch (which needs the pod labels) ask for it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tracekit import attributes as a
from tracekit.k8s import api_calls, client
from tracekit.k8s.downward import ENV_VARS, pod_attributes

log = logging.getLogger("tracekit.k8s")

#: Seconds the start-up lookup may take in total (env ``TRACEKIT_K8S_TIMEOUT``).
DEFAULT_TIMEOUT = 2.0

_OWNER_ATTRS = {
    "StatefulSet": a.K8S_STATEFULSET_NAME,
    "DaemonSet": a.K8S_DAEMONSET_NAME,
    "Job": a.K8S_JOB_NAME,
    "ReplicaSet": a.K8S_REPLICASET_NAME,
}


@dataclass(frozen=True)
class PodContext:
    """What the library knows about the pod it runs in."""

    #: Resource attributes (semantic-convention keys).
    attributes: Mapping[str, str] = field(default_factory=dict)
    #: Pod labels, or None when unknown (no API, or the lookup failed).
    labels: Mapping[str, str] | None = None
    namespace: str | None = None
    pod_name: str | None = None
    #: How to reach the API (None: not in a cluster, TRACEKIT_K8S=off, or no usable config).
    connection: client.Connection | None = None


_cache: dict[tuple[Any, ...], PodContext] = {}
_cache_lock = threading.Lock()


def timeout_from_env(environ: Mapping[str, str] | None = None) -> float:
    env = os.environ if environ is None else environ
    try:
        return max(0.1, float(env.get("TRACEKIT_K8S_TIMEOUT") or DEFAULT_TIMEOUT))
    except ValueError:
        return DEFAULT_TIMEOUT


_startup: dict[int, float] = {}
_startup_lock = threading.Lock()


def startup_deadline(environ: Mapping[str, str] | None = None) -> float:
    """When this process's start-up waits on the API must end (``time.monotonic()``).

    Fixed at the first call in a process: the pod lookup (from the resource detector or ``configure``)
    and the wait for the first routing lists all take their time from one ``TRACEKIT_K8S_TIMEOUT``.
    The clock starts at the first wait, after the client library is imported and configured (CPU
    work, not a wait on the API).
    """
    with _startup_lock:
        pid = os.getpid()
        if pid not in _startup:
            _startup[pid] = time.monotonic() + timeout_from_env(environ)
        return _startup[pid]


def pod_context(
    environ: Mapping[str, str] | None = None, *, mode: str | None = None, deadline: float | None = None
) -> PodContext:
    """Return this process's :class:`PodContext`, doing the API lookup at most once per configuration.

    The cache key holds every input (mode, kubeconfig, Downward API values, pid), so a fork or a test
    that changes the environment gets a fresh context. ``deadline`` (``time.monotonic()``) ends the wait
    for the lookup; by default the process's :func:`startup_deadline`.
    """
    env = os.environ if environ is None else environ
    mode = mode or client.mode_from_env(env)
    key = (
        os.getpid(),
        mode,
        env.get("KUBECONFIG"),
        env.get("KUBERNETES_SERVICE_HOST"),
        *(env.get(v) for v in ENV_VARS),
    )
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            return hit
        ctx = _build(env, mode, deadline)
        _cache[key] = ctx
        return ctx


def clear_cache() -> None:
    """Forget cached contexts (tests; a long-lived process that wants a fresh lookup)."""
    with _cache_lock, _startup_lock:
        _cache.clear()
        _startup.clear()


def _build(env: Mapping[str, str], mode: str, deadline: float | None) -> PodContext:
    attrs = pod_attributes(env)
    conn = client.connect(mode, env)
    if conn is None:
        return PodContext(attrs, None, attrs.get(a.K8S_NAMESPACE_NAME), attrs.get(a.K8S_POD_NAME), None)
    namespace = attrs.get(a.K8S_NAMESPACE_NAME) or conn.namespace
    attrs.setdefault(a.K8S_NAMESPACE_NAME, namespace)
    pod_name = attrs.get(a.K8S_POD_NAME)
    if not pod_name and conn.source == "in-cluster":
        pod_name = env.get("HOSTNAME")  # a pod's hostname is its name unless spec.hostname is set
    if not pod_name:
        log.info("tracekit: POD_NAME is not set; skipping the pod lookup (labels, owners)")
        return PodContext(attrs, None, namespace, None, conn)

    if deadline is None:
        deadline = startup_deadline(env)
    timeout = max(0.0, min(timeout_from_env(env), deadline - time.monotonic()))
    result: dict[str, Any] = {}
    worker = threading.Thread(
        target=_lookup_into, args=(result, conn, namespace, pod_name, timeout), daemon=True
    )
    worker.start()
    worker.join(timeout)
    if worker.is_alive() or "error" in result:
        reason = result.get("error") or f"no answer within {timeout:g} s"
        log.warning(
            "tracekit: Kubernetes pod lookup failed (%s); continuing with Downward API attributes only",
            reason,
        )
        return PodContext(attrs, None, namespace, pod_name, conn)
    found: dict[str, str] = result["attributes"]
    # Downward API values win: they are what the kubelet injected into this very container.
    return PodContext({**found, **attrs}, result["labels"], namespace, pod_name, conn)


def _lookup_into(
    result: dict[str, Any], conn: client.Connection, namespace: str, pod_name: str, timeout: float
) -> None:
    try:
        result["attributes"], result["labels"] = lookup_pod(conn.api, namespace, pod_name, timeout)
    except Exception as exc:
        result["error"] = describe_api_error(exc, api_calls.PODS)


def _read(api: Any, call: api_calls.ApiCall, namespace: str, name: str, timeout: float) -> dict[str, Any]:
    return client.read_object(api, call, namespace, name, timeout)


def lookup_pod(
    api: Any, namespace: str, pod_name: str, timeout: float
) -> tuple[dict[str, str], dict[str, str]]:
    """Read the pod (and its ReplicaSet); return (resource attributes, pod labels)."""
    pod = _read(api, api_calls.PODS, namespace, pod_name, timeout)
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    attrs: dict[str, str] = {a.K8S_POD_NAME: pod_name, a.K8S_NAMESPACE_NAME: namespace}
    for key, value in (
        (a.K8S_POD_UID, meta.get("uid")),
        (a.K8S_POD_IP, status.get("podIP")),
        (a.K8S_NODE_NAME, (pod.get("spec") or {}).get("nodeName")),
    ):
        if value:
            attrs[key] = str(value)
    attrs.update({a.K8S_POD_LABEL_PREFIX + k: v for k, v in labels.items()})
    owner = _controller(meta)
    if owner and owner.get("kind") in _OWNER_ATTRS:
        attrs[_OWNER_ATTRS[owner["kind"]]] = str(owner.get("name"))
        if owner["kind"] == "ReplicaSet":
            rs = _read(api, api_calls.REPLICASETS, namespace, str(owner.get("name")), timeout)
            rs_owner = _controller(rs.get("metadata") or {})
            if rs_owner and rs_owner.get("kind") == "Deployment":
                attrs[a.K8S_DEPLOYMENT_NAME] = str(rs_owner.get("name"))
    return attrs, labels


def _controller(meta: Mapping[str, Any]) -> Mapping[str, Any] | None:
    refs = meta.get("ownerReferences") or []
    return next((r for r in refs if r.get("controller")), refs[0] if refs else None)


def describe_api_error(exc: BaseException, call: api_calls.ApiCall) -> str:
    """One readable line for an API failure, with the RBAC hint when it is a 403."""
    status = getattr(exc, "status", None)
    if status == 403:
        return (
            f"403 Forbidden on {'/'.join(filter(None, (call.group, call.resource)))}: grant "
            f"{', '.join(call.verbs)} on it to the pod's service account (see docs/library.md, RBAC)"
        )
    if status:
        return f"HTTP {status} {getattr(exc, 'reason', '') or ''}".strip()
    return f"{type(exc).__name__}: {exc}"

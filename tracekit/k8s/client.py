"""How the library reaches the Kubernetes API: ``TRACEKIT_K8S`` = ``auto`` | ``kubeconfig`` | ``off``.

* ``auto`` (default): in-cluster config (service account) when ``KUBERNETES_SERVICE_HOST`` is set,
  otherwise no API use at all (one info line).
* ``kubeconfig``: the kubeconfig named by ``KUBECONFIG`` (first path), else ``~/.kube/config``: to run
  against a cluster from outside, and for tests against a local API server.
* ``off``: never talk to the API (Downward API variables only).

The client is built with urllib3 retries off, because the library bounds every call itself and retries
with its own backoff; hidden retries would stretch start-up on a dead API.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tracekit.k8s import api_calls

log = logging.getLogger("tracekit.k8s")

MODES = ("auto", "kubeconfig", "off")
_SA_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


@dataclass(frozen=True)
class Connection:
    """An API client plus the namespace the library works in."""

    api: Any  # kubernetes.client.ApiClient
    namespace: str
    source: str  # "in-cluster" | "kubeconfig:<path>"


def mode_from_env(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    mode = (env.get("TRACEKIT_K8S") or "auto").strip().lower()
    if mode not in MODES:
        log.warning("TRACEKIT_K8S=%r is not one of %s; using 'off'", mode, "|".join(MODES))
        return "off"
    return mode


def connect(mode: str | None = None, environ: Mapping[str, str] | None = None) -> Connection | None:
    """Return a :class:`Connection` for ``mode``, or None when the API is not to be (or cannot be) used.

    Never raises: a broken kubeconfig or service account is logged once and means "no API".
    """
    env = os.environ if environ is None else environ
    mode = mode or mode_from_env(env)
    if mode == "off":
        log.info("tracekit: TRACEKIT_K8S=off, no Kubernetes API lookups")
        return None
    if mode == "auto" and not env.get("KUBERNETES_SERVICE_HOST"):
        log.info("tracekit: not running in a Kubernetes cluster, no Kubernetes API lookups")
        return None
    try:
        from kubernetes import client, config

        cfg = client.Configuration()
        if mode == "auto":
            config.load_incluster_config(client_configuration=cfg)
            source = "in-cluster"
            namespace = env.get("POD_NAMESPACE") or _read_file(_SA_NAMESPACE) or "default"
        else:
            path = (env.get("KUBECONFIG") or "").split(os.pathsep)[0] or os.path.expanduser("~/.kube/config")
            config.load_kube_config(config_file=path, client_configuration=cfg)
            source = f"kubeconfig:{path}"
            namespace = env.get("POD_NAMESPACE") or _kubeconfig_namespace(path) or "default"
        cfg.retries = False
        return Connection(client.ApiClient(cfg), namespace, source)
    except Exception as exc:  # any config problem means: no API, keep serving
        log.warning("tracekit: cannot configure the Kubernetes client (%s): %s", mode, exc)
        return None


def _read_file(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip() or None
    except OSError:
        return None


def _kubeconfig_namespace(path: str) -> str | None:
    from kubernetes import config

    try:
        _, active = config.list_kube_config_contexts(config_file=path)
        return (active or {}).get("context", {}).get("namespace")
    except Exception:
        return None


def resource_path(call: api_calls.ApiCall, namespace: str, name: str | None = None) -> str:
    """The REST path of ``call``'s resource in ``namespace`` (and of one object when ``name`` is given)."""
    base = f"/api/{call.version}" if not call.group else f"/apis/{call.group}/{call.version}"
    path = f"{base}/namespaces/{namespace}/{call.resource}" if call.namespaced else f"{base}/{call.resource}"
    return f"{path}/{name}" if name else path


def api_get(
    api: Any,
    call: api_calls.ApiCall,
    namespace: str,
    name: str | None = None,
    *,
    query: Mapping[str, Any] | None = None,
    timeout: Any = None,
) -> Any:
    """GET one API path through the official client's ``ApiClient`` (auth, TLS, proxy config included).

    Why not the generated ``CoreV1Api`` & co: in kubernetes>=35 importing one of those modules costs 1-3 s
    of CPU, which would eat the start-up lookup's time budget; the paths come straight from
    :data:`~tracekit.k8s.api_calls.API_CALLS` instead. Returns the raw urllib3 response (JSON not yet read,
    so a watch can stream it); raises ``kubernetes.client.exceptions.ApiException`` on a non-2xx answer.
    """
    from kubernetes.client.exceptions import ApiException

    params = [(k, _query_value(v)) for k, v in (query or {}).items() if v is not None]
    method, url, headers, _, _ = api.param_serialize(
        "GET",
        resource_path(call, namespace, name),
        query_params=params,
        header_params={"Accept": "application/json"},
        auth_settings=["BearerToken"],
    )
    resp = api.call_api(method, url, headers, _request_timeout=timeout)
    if not 200 <= resp.status <= 299:
        resp.read()
        raise ApiException.from_response(http_resp=resp, body=None, data=None)
    return resp.response


def _query_value(v: Any) -> Any:
    return ("true" if v else "false") if isinstance(v, bool) else v


def list_function(api: Any, call: api_calls.ApiCall) -> Callable[..., Any]:
    """A list function for ``call``'s resource in the shape :class:`kubernetes.watch.Watch` expects.

    It takes ``namespace=`` plus the usual list/watch keyword arguments and returns the raw response, so
    it serves both a plain list (read the JSON) and ``Watch().stream(...)`` (JSON lines).
    """

    # No annotations on purpose: Watch inspects them to pick a model class, and we want raw dicts.
    def list_namespaced(
        namespace,
        watch=None,
        resource_version=None,
        timeout_seconds=None,
        allow_watch_bookmarks=None,
        _preload_content=False,
        _request_timeout=None,
    ):
        query = {
            "allowWatchBookmarks": allow_watch_bookmarks,
            "resourceVersion": resource_version,
            "timeoutSeconds": timeout_seconds,
            "watch": watch,
        }
        return api_get(api, call, namespace, query=query, timeout=_request_timeout)

    return list_namespaced


def read_object(api: Any, call: api_calls.ApiCall, namespace: str, name: str, timeout: Any) -> dict[str, Any]:
    """GET one object of ``call``'s resource and return its JSON."""
    resp = api_get(api, call, namespace, name, timeout=timeout)
    try:
        return json.loads(resp.data)
    finally:
        resp.release_conn()

"""Every Kubernetes API call the library makes, in one list.

Why one list: the RBAC a pod needs must match what the code does, exactly. The library's modules take
their calls from these entries (``metadata.py`` reads pods and replicasets, ``watch.py`` lists and watches
ingresses, services and httproutes), and the cluster kit derives and checks its Role from
:data:`API_CALLS` (:func:`role_rules`), so adding a call here is the one place that grants it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ApiCall:
    """One kind of request against the Kubernetes API: a resource and the verbs used on it."""

    #: API group ("" for the core group).
    group: str
    version: str
    #: Plural resource name, as in a Role rule and in the REST path.
    resource: str
    verbs: tuple[str, ...]
    namespaced: bool
    #: Why the library needs it (shown in docs/library.md).
    purpose: str

    @property
    def api_version(self) -> str:
        """``v1`` for the core group, ``group/version`` otherwise (as in a manifest's apiVersion)."""
        return f"{self.group}/{self.version}" if self.group else self.version


#: Read this pod once at start: labels and ownerReferences (pod -> ReplicaSet/StatefulSet/...).
PODS = ApiCall("", "v1", "pods", ("get",), True, "pod labels and owner (one read at start)")
#: Read the owning ReplicaSet once at start to learn its Deployment.
REPLICASETS = ApiCall(
    "apps", "v1", "replicasets", ("get",), True, "owner chain ReplicaSet -> Deployment (one read at start)"
)
#: Background list+watch: which Ingress rule routes a request here.
INGRESSES = ApiCall(
    "networking.k8s.io", "v1", "ingresses", ("list", "watch"), True, "per-request Ingress rule matching"
)
#: Background list+watch: Service selectors and ports (does the backend Service select this pod?).
SERVICES = ApiCall("", "v1", "services", ("list", "watch"), True, "backend Service selector and ports")
#: Background list+watch of Gateway API routes; skipped quietly when the CRDs are not installed.
HTTPROUTES = ApiCall(
    "gateway.networking.k8s.io",
    "v1",
    "httproutes",
    ("list", "watch"),
    True,
    "per-request Gateway API HTTPRoute matching (optional CRD)",
)

#: The single list of Kubernetes API calls the library makes.
API_CALLS: tuple[ApiCall, ...] = (PODS, REPLICASETS, INGRESSES, SERVICES, HTTPROUTES)


def role_rules(calls: tuple[ApiCall, ...] = API_CALLS) -> list[dict[str, list[str]]]:
    """Return RBAC ``rules`` for a namespaced Role granting exactly ``calls`` (one rule per group).

    The shape is the one a Role manifest uses, so the cluster kit can compare its YAML with this.
    """
    by_group: dict[str, dict[str, set[str]]] = {}
    for call in calls:
        by_group.setdefault(call.group, {}).setdefault(call.resource, set()).update(call.verbs)
    rules = []
    for group in sorted(by_group):
        resources = by_group[group]
        # Resources sharing one verb set go in one rule; keep the output stable (sorted).
        by_verbs: dict[tuple[str, ...], list[str]] = {}
        for resource, verbs in resources.items():
            by_verbs.setdefault(tuple(sorted(verbs)), []).append(resource)
        for verb_list, names in sorted(by_verbs.items()):
            rules.append({"apiGroups": [group], "resources": sorted(names), "verbs": list(verb_list)})
    return rules

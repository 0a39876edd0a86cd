"""The ``tracekit demo`` command: play the request's journey on this machine, break it, analyse it."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from demo_app import scenarios
from demo_app.launcher import Demo, DemoError, DemoOptions, DemoRun
from demo_app.network.netns import NetworkError
from demo_app.podman.engine import PodmanError
from demo_app.podman.manifests import ManifestError
from demo_app.verdict import judge, representative
from tracekit.analyze.renderers.text import console_width
from tracekit.errors import TracekitError
from tracekit.outputs import prepare_output

_SCENARIO_HELP = "\n".join(f"  {s.name:<18} {s.title}" for s in scenarios.SCENARIOS.values())


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (and SIGHUP) unwind like Ctrl-C, so every child process and port is released."""

    def _raise(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, _raise) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@click.command("demo", epilog="\b\nScenarios:\n" + _SCENARIO_HELP)
@click.option("--requests", "requests_", default=200, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--replicas", default=2, show_default=True, type=click.IntRange(1, 16), help="Pod replicas.")
@click.option(
    "--scenario",
    default="baseline",
    show_default=True,
    type=click.Choice(list(scenarios.SCENARIOS)),
    help="What to break (see below).",
)
@click.option("--format", "fmt", default="text", show_default=True, type=click.Choice(["text", "json"]))
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), help="Also write an HTML report.")
@click.option(
    "--traces",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Keep the collected spans in this OTLP JSON lines file (for `tracekit analyze`).",
)
@click.option(
    "--rate",
    type=click.FloatRange(0),
    help="Requests per second, 0 for as fast as possible.  [default: 50; scale-up: 25]",
)
@click.option("--seed", default=1, show_default=True, type=int, help="Seed for the request mix and errors.")
@click.option(
    "--network",
    type=click.Choice(["netns", "loopback"]),
    help="netns: a namespace and IP per pod, DNS, load balancer and Service VIP in nftables; loopback: "
    "every process on 127.0.0.1.  [default: netns as root on Linux with nftables and iproute2]",
)
@click.option(
    "--ingress",
    "ingress_kind",
    type=click.Choice(["builtin", "caddy"]),
    default="builtin",
    show_default=True,
    help="builtin: the demo's ingress hop; caddy: Caddy configured from deploy/base's Ingress (netns only).",
)
@click.option(
    "--runtime",
    default="local",
    show_default=True,
    type=click.Choice(["local", "podman"]),
    help="Who runs the pods: local processes, or podman playing deploy/base's Deployment with the "
    "tracekit-demo image (make image; root). With --network netns podman's pods sit behind the Service "
    "VIP; with loopback, on a podman network of their own.",
)
def demo(
    requests_: int,
    replicas: int,
    scenario: str,
    fmt: str,
    report: Path | None,
    traces: Path | None,
    rate: float | None,
    seed: int,
    network: str | None,
    ingress_kind: str,
    runtime: str,
) -> None:
    """Run the whole request journey on this machine and show where the time went.

    Starts an OTLP receiver, pod replicas (the Flask shop app plus its SQLite sidecar, with the
    Downward API variables a cluster sets), an ingress hop routing by deploy/base's Ingress and
    Service, and a load generator; then analyses the collected traces, prints a representative
    trace's timeline and the per-layer table, and says which layer the analyzer blames.
    """
    for path in (report, traces):
        if path is not None:
            try:
                prepare_output(path)  # before the run: a missing directory is created
            except TracekitError as exc:
                click.echo(f"tracekit demo: error: {exc}", err=True)
                sys.exit(2)
    chosen = scenarios.get(scenario)
    if runtime == "podman" and chosen.link_fault is not None:
        # The fault is shaped on the pod's end of its link, which podman's sandbox holds.
        raise click.UsageError(f"--scenario {chosen.name} shapes a pod's link: it needs --runtime local")
    network = _network_mode(network, chosen)
    if ingress_kind == "caddy" and network != "netns":
        raise click.UsageError(
            "--ingress caddy needs --network netns (it reaches the pods through the ClusterIP)"
        )
    options = DemoOptions(
        chosen,
        requests=requests_,
        replicas=replicas,
        rate=rate,
        seed=seed,
        traces_path=traces,
        network=network,
        ingress=ingress_kind,
        runtime=runtime,
    )
    # A pipe or file gets the analyzer's text width, a terminal its own.
    out = Console(highlight=False, width=console_width(sys.stdout))
    err = Console(stderr=True, highlight=False, width=console_width(sys.stderr))
    if fmt == "text":
        out.print(
            Text.assemble(("tracekit demo", "bold"), f" · scenario {chosen.name}: ", (chosen.title, "bold"))
        )
        out.print(f"  injected: {chosen.breaks}")
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[ok]} ok · [red]{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )
    task = progress.add_task("requests", total=requests_, ok=0, failed=0)
    counts = {"ok": 0, "failed": 0}

    def on_progress(event: dict[str, Any]) -> None:
        counts["ok" if 0 < event["status"] < 400 else "failed"] += 1
        progress.update(task, advance=1, ok=counts["ok"], failed=counts["failed"])

    def on_event(moment: float, text: str) -> None:
        progress.console.print(f"  [dim]{moment:6.2f}s[/dim] {text}")

    runner = Demo(options, on_progress=on_progress, on_event=on_event)
    try:
        with _sigterm_as_interrupt(), progress:
            run = runner.run()
        result = _analyse(run, chosen, fmt, report, out, err)
    except KeyboardInterrupt:
        runner.cleanup()
        err.print("tracekit demo: interrupted; every process was stopped")
        sys.exit(130)
    except (DemoError, PodmanError, ManifestError, NetworkError) as exc:
        err.print(f"tracekit demo: {exc}")
        err.print(f"  (process logs kept in {getattr(runner, 'workdir', '?')})")
        raise SystemExit(1) from None
    runner.cleanup()
    if fmt == "json":
        click.echo(json.dumps(result, indent=2))


def _network_mode(asked: str | None, chosen: scenarios.Scenario) -> str:
    """The network mode to run: the one asked for, else netns where it can run (a one-line note if not)."""
    from demo_app.network import unavailable_reason

    why = unavailable_reason() if asked != "loopback" else None
    if asked == "netns" and why is not None:
        raise click.UsageError(f"--network netns: {why}")
    if chosen.name in scenarios.NEEDS_NETNS and (asked == "loopback" or why is not None):
        reason = "it shapes a pod's link" + (f"; netns cannot run here: {why}" if why else "")
        raise click.UsageError(f"--scenario {chosen.name} needs --network netns ({reason})")
    if asked is None and why is not None:
        click.echo(f"tracekit demo: network loopback ({why}; --network netns needs root on Linux)", err=True)
        return "loopback"
    return asked or "netns"


def _analyse(
    run: DemoRun, chosen: scenarios.Scenario, fmt: str, report_path: Path | None, out: Console, err: Console
) -> dict[str, Any]:
    from tracekit.analyze.api import analyze_paths

    report = analyze_paths([run.traces_path], include_spans=True)
    verdict = judge(chosen, run, report)
    if report_path is not None:
        verdict["report"] = _write_html(report, report_path, err)
    if run.options.traces_path is not None:
        verdict["traces_path"] = str(run.options.traces_path)
    if fmt == "json":
        verdict["summary"] = report["summary"]
        return verdict
    _print_text(run, chosen, report, verdict, out)
    return verdict


def _write_html(report: dict[str, Any], path: Path, err: Console) -> str | None:
    try:
        from tracekit.analyze.renderers.html import render_html
    except ImportError:
        err.print("tracekit demo: the HTML report renderer is not available in this build; no report written")
        return None
    try:
        path.write_text(render_html(report), encoding="utf-8")
    except OSError as exc:  # the directory was checked before the run; a full disk still fails here
        err.print(f"tracekit demo: error: {path}: cannot write: {exc.strerror or exc}")
        return None
    return str(path)


def _print_text(
    run: DemoRun, chosen: scenarios.Scenario, report: dict[str, Any], verdict: dict[str, Any], out: Console
) -> None:
    from tracekit.analyze.renderers.text import failure_table, layer_table, route_table, trace_view

    responses = ", ".join(f"{code or 'no answer'}: {n}" for code, n in verdict["responses"].items())
    out.print(
        f"\n[bold]Requests[/bold]: {verdict['requests_sent']} sent ({responses}); "
        f"{verdict['traces_received']} traces in the file, {verdict['traces_analyzed']} analysed, "
        f"{verdict['spans']} spans; {run.replicas} replica(s), {run.elapsed_s:.1f} s"
    )
    if verdict["requests_per_pod"]:
        per_pod = ", ".join(f"{pod}: {n}" for pod, n in sorted(verdict["requests_per_pod"].items()))
        out.print(f"  served per pod: {per_pod}")
    trace = representative(chosen, report, verdict["blamed_layer"])
    if trace is not None:
        why = "a failed request" if trace["status"] == "error" else "the request closest to the median"
        out.print(f"\n[bold]A representative trace[/bold] ({why}):")
        out.print(trace_view(trace))
        path = network_path(trace)
        if path:
            steps = path.replace(" -> ", "\n    -> ")
            out.print(f"  The way in (addresses from the spans):\n    {steps}\n")
    out.print(layer_table(report["summary"]))
    for table in (failure_table(report["summary"]), route_table(report["summary"])):
        if table is not None:
            out.print(table)
    _print_verdict(chosen, verdict, out)
    if "traces_path" in verdict:
        out.print(f"Spans kept in {verdict['traces_path']} (tracekit analyze {verdict['traces_path']})")
    if verdict.get("report"):
        out.print(f"HTML report written to {verdict['report']}")


def network_path(trace: dict[str, Any]) -> str | None:
    """The addresses the request crossed, read from its spans: DNS answer, load balancer, ingress pod,
    Service ClusterIP, pod IP (None when the trace has no pod span)."""
    spans = trace.get("spans") or []
    dns = lb = ingress = service = pod = None
    for span in spans:
        resource, attrs, kind = span.get("resource") or {}, span.get("attributes") or {}, span.get("kind")
        ingress_span = (
            attrs.get("tracekit.component") == "ingress" or resource.get("webengine.name") == "Caddy"
        )
        if "dns.question.name" in attrs and attrs.get("dns.answers"):
            answers = ", ".join(attrs["dns.answers"])
            dns = f"DNS {attrs.get('server.address')}: {attrs['dns.question.name']} = {answers}"
        elif not span.get("parent_id") and attrs.get("network.peer.address"):
            lb = f"{attrs['network.peer.address']}:{attrs.get('network.peer.port', 80)}"
        elif ingress_span and kind == "server" and resource.get("k8s.pod.ip"):
            ingress = str(resource["k8s.pod.ip"])
        elif ingress_span and kind == "client" and attrs.get("network.peer.address"):
            name = attrs.get("tracekit.service.name", "")
            service = f"Service {name} {attrs['network.peer.address']}:{attrs.get('network.peer.port')}"
        elif kind == "server" and resource.get("k8s.container.name") == "app" and pod is None:
            port = attrs.get("server.port", attrs.get("net.host.port"))
            pod = f"pod {resource.get('k8s.pod.name')} {resource.get('k8s.pod.ip')}:{port}"
    if pod is None:
        return None
    if service is not None and pod.endswith(" " + service.rsplit(" ", 1)[-1]):
        service = service.rsplit(" ", 1)[0] + " (the ingress picked the endpoint itself)"
    steps = [dns]
    if lb is not None and ingress is not None and not lb.startswith(f"{ingress}:"):
        steps.append(f"load balancer {lb}")
    steps += [f"ingress {ingress}" if ingress else None, service, pod]
    return " -> ".join(step for step in steps if step)


def _print_verdict(chosen: scenarios.Scenario, verdict: dict[str, Any], out: Console) -> None:
    blamed, expected = verdict["blamed_layer"], verdict["expected_layer"]
    mark = "[green]✓[/green]" if verdict["match"] else "[red]✗[/red]"
    if chosen.kind == "failure":
        failed = verdict["failed_requests"]
        on_blamed = verdict["failed_layers"].get(str(blamed), 0)
        line = (
            f"the analyzer blames [bold]{blamed}[/bold] for {on_blamed} of {failed} failed requests"
            f" (all failures: {verdict['failed_layers']})"
        )
    elif verdict.get("layer_growth_ms"):
        grew = verdict["layer_growth_ms"].get(str(blamed), 0.0)
        line = (
            f"the layer that grew most on {verdict['shaped_pod']}'s requests is [bold]{blamed}[/bold] "
            f"(mean +{grew:.1f} ms against the other pods' requests)"
        )
    else:
        p50 = verdict["layer_p50_ms"].get(str(blamed), 0.0)
        line = f"the layer with the largest median time is [bold]{blamed}[/bold] (p50 {p50:.1f} ms)"
        if chosen.kind == "baseline":
            line += f"; {verdict['failed_requests']} failed requests"
    truth = f"injected: {expected}" if expected else "injected: nothing broken, no failure expected"
    out.print(f"\n[bold]Verdict[/bold]: {line}. {truth} {mark}")
    out.print(f"[bold]In a cluster[/bold]: {chosen.operator_check}\n")

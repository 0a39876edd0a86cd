"""Text renderer (rich): the per-layer table, failures, routes, then a waterfall per chosen trace.

The report passed in holds the traces to draw (the CLI keeps the slowest N plus a few failed ones);
the aggregate tables come from the summary, which covers every trace read.
"""

from __future__ import annotations

import io
from typing import IO, Any

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from tracekit.analyze.model import LAYERS
from tracekit.analyze.renderers.base import Renderer

#: One colour per layer, in path order; the same in the waterfall bars and the tables.
LAYER_STYLES: dict[str, str] = {
    "client": "grey70",
    "edge": "blue",
    "ingress": "magenta",
    "service": "yellow",
    "app": "green",
    "sidecar": "cyan",
    "db": "dark_orange",
    "external": "bright_blue",
    "unknown": "white",
}
#: Waterfall rows drawn per trace before the rest is summarised.
MAX_ROWS = 60
BAR_WIDTH = 32


#: Code points a terminal acts on instead of showing (C0 and C1 controls, DEL: escape sequences that
#: clear the screen or set the window title) or that reorder what it shows (bidirectional overrides
#: and isolates), each written as a visible Python-style escape. Names, routes and messages come from
#: the traces, which anyone who can send spans writes.
_UNSAFE = {
    code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    for code in (*range(0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A))
}


def clean(text: object) -> str:
    """``text`` as a string safe to print on a terminal (see ``_UNSAFE``)."""
    return str(text).translate(_UNSAFE)


def _ms(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _layer(layer: str) -> Text:
    return Text(layer, style=LAYER_STYLES.get(layer, "white"))


def layer_table(summary: dict[str, Any]) -> Table:
    table = Table(title="Where the time went, per layer", box=box.SIMPLE_HEAVY, title_justify="left")
    for col in ("layer", "traces", "mean ms", "p50 ms", "p95 ms", "p99 ms", "share"):
        table.add_column(col, justify="left" if col == "layer" else "right", no_wrap=True)
    table.add_column("", width=20, no_wrap=True)
    for layer in LAYERS:
        entry = summary["layers"].get(layer)
        if entry is None:
            continue
        share = entry["share"]
        bar = Text("█" * max(1 if share > 0 else 0, round(share * 20)), style=LAYER_STYLES[layer])
        table.add_row(
            _layer(layer),
            str(entry.get("count", "")),
            _ms(entry["mean_ms"]),
            _ms(entry["p50_ms"]),
            _ms(entry["p95_ms"]),
            _ms(entry["p99_ms"]),
            f"{share:.1%}",
            bar,
        )
    return table


def failure_table(summary: dict[str, Any]) -> Table | None:
    reasons = summary.get("failures", {}).get("by_reason", [])
    if not reasons:
        return None
    table = Table(
        title="Failed requests, by layer and reason", box=box.SIMPLE, title_justify="left", min_width=60
    )
    table.add_column("layer", no_wrap=True)
    table.add_column("reason")
    table.add_column("requests", justify="right")
    for item in reasons[:15]:
        table.add_row(_layer(item["layer"]), Text(clean(item["kind"])), str(item["count"]))
    return table


def route_table(summary: dict[str, Any], limit: int = 10) -> Table | None:
    routes = summary.get("routes", {})
    if len(routes) < 1:
        return None
    table = Table(title="Routes", box=box.SIMPLE, title_justify="left")
    for col in ("route", "requests", "errors", "p50 ms", "p95 ms", "top layer"):
        left = col in ("route", "top layer")
        table.add_column(col, justify="left" if left else "right", no_wrap=not left or col == "top layer")
    for route, entry in list(routes.items())[:limit]:
        layers = entry.get("layers", {})
        top = max(layers, key=lambda k: layers[k]["share"]) if layers else ""
        top_text = _layer(top) + Text(f" {layers[top]['share']:.0%}") if top else Text("")
        table.add_row(
            Text(clean(route)),
            str(entry["count"]),
            str(entry["errors"]),
            _ms(entry["p50_ms"]),
            _ms(entry["p95_ms"]),
            top_text,
        )
    return table


def _k8s(k8s: dict[str, Any]) -> str:
    parts = []
    if "pod" in k8s:
        parts.append(f"pod/{k8s['pod']}")
    if "container" in k8s:
        parts.append(f"c/{k8s['container']}")
    if "node" in k8s:
        parts.append(f"node/{k8s['node']}")
    return clean(" ".join(parts))


def _bar(hop: dict[str, Any], total: float) -> Text:
    total = total or 1.0
    start = int(max(0.0, hop["start_ms"]) / total * BAR_WIDTH)
    length = max(1, round(hop["duration_ms"] / total * BAR_WIDTH))
    start = min(start, BAR_WIDTH - 1)
    length = min(length, BAR_WIDTH - start)
    style = LAYER_STYLES.get(hop["layer"], "white")
    char = "█" if hop.get("critical") else "░"
    return Text(" " * start) + Text(char * length, style=style) + Text(" " * (BAR_WIDTH - start - length))


def _outcome_word(trace: dict[str, Any]) -> str:
    """FAILED, or REJECTED when the caller got a 4xx answer (diagnosis.outcome)."""
    return "REJECTED" if (trace.get("diagnosis") or {}).get("outcome") == "rejected" else "FAILED"


def trace_view(trace: dict[str, Any]) -> Group:
    """One trace: header, layer split, waterfall with self time and k8s context, diagnosis."""
    failed = trace["status"] == "error"
    head = Text.assemble(
        ("Trace ", "bold"),
        (trace["trace_id"], "bold"),
        f"  {_ms(trace['duration_ms'])} ms  ",
        (_outcome_word(trace) if failed else "ok", "bold red" if failed else "bold green"),
        f"  {clean(trace.get('route', ''))}",
    )
    if not failed and trace.get("error_spans"):
        head.append(f"  ({trace['error_spans']} span(s) in error, the request survived them)", "yellow")
    split = Text("  ")
    for layer, ms in trace["layers"].items():
        share = ms / trace["duration_ms"] if trace["duration_ms"] else 1.0
        split += _layer(layer) + Text(f" {_ms(ms)} ms ({share:.0%})  ")
    table = Table(box=box.SIMPLE, show_edge=False, pad_edge=False)
    table.add_column("span", no_wrap=True, overflow="ellipsis", max_width=56)
    table.add_column("layer", no_wrap=True, min_width=8)
    table.add_column("start ms", justify="right", no_wrap=True, min_width=8)
    table.add_column("dur ms", justify="right", no_wrap=True, min_width=7)
    table.add_column("self ms", justify="right", no_wrap=True, min_width=7)
    table.add_column("waterfall", width=BAR_WIDTH, min_width=BAR_WIDTH, no_wrap=True, overflow="crop")
    table.add_column("k8s", no_wrap=True, overflow="ellipsis", max_width=48)
    hops = trace["hops"]
    for hop in hops[:MAX_ROWS]:
        name = Text("  " * min(hop.get("depth", 0), 12)) + Text(clean(f"{hop['service']}: {hop['name']}"))
        if hop.get("failed"):
            name.stylize("red")
        table.add_row(
            name,
            _layer(hop["layer"]),
            _ms(hop["start_ms"]),
            _ms(hop["duration_ms"]),
            _ms(hop["self_ms"]) if hop["self_ms"] else "",
            _bar(hop, trace["duration_ms"]),
            Text(_k8s(hop.get("k8s", {}))),
        )
    parts: list[Any] = [head, split, table]
    if len(hops) > MAX_ROWS:
        rest = hops[MAX_ROWS:]
        rest_self = sum(h["self_ms"] for h in rest)
        parts.append(
            Text(f"  ... {len(rest)} more spans ({_ms(rest_self)} ms of self time) not shown", "dim")
        )
    diag = trace["diagnosis"]
    if diag["failed_layer"] is not None:
        parts.append(
            Text.assemble(
                ("  ✗ rejected in " if diag.get("outcome") == "rejected" else "  ✗ broke in ", "bold red"),
                _layer(diag["failed_layer"]),
                clean(f": {diag['reason']} (span {diag['span_id']})"),
            )
        )
    else:
        parts.append(Text("  ✓ no failure", "green"))
    warnings = trace.get("warnings", [])
    for warning in warnings[:3]:
        parts.append(Text(f"  ! {clean(warning)}", "yellow"))
    if len(warnings) > 3:
        parts.append(Text(f"  ! ... and {len(warnings) - 3} more warnings", "yellow"))
    parts.append(Text(""))
    return Group(*parts)


def print_report(report: dict[str, Any], console: Console) -> None:
    """Print the whole text report on ``console``."""
    summary = report["summary"]
    dur = summary.get("duration", {})
    console.print(
        Text.assemble(
            ("tracekit analyze: ", "bold"),
            f"{summary['traces']:,} traces, {summary['spans']:,} spans, ",
            (f"{summary['error_traces']:,} failed", "red" if summary["error_traces"] else ""),
            f"; duration p50 {_ms(dur.get('p50_ms', 0.0))} ms, p95 {_ms(dur.get('p95_ms', 0.0))} ms,"
            f" p99 {_ms(dur.get('p99_ms', 0.0))} ms",
        )
    )
    console.print(layer_table(summary))
    for table in (failure_table(summary), route_table(summary)):
        if table is not None:
            console.print(table)
    for trace in report["traces"]:
        console.print(trace_view(trace))


class TextRenderer(Renderer):
    name = "text"
    output_file_extension = "txt"

    #: Width used when the output is a file or a pipe (a terminal uses its own width). The waterfall
    #: table's columns need up to about 185 (span 56, waterfall 32, k8s 48, the numbers, padding):
    #: at 150 rich cut its rows at the edge and the k8s column lost the node name.
    width_default = 200

    def __init__(self, *, color: bool = False, width: int = width_default) -> None:
        self.color = color
        self.width = width

    def render(self, data: Any) -> str:
        buf = io.StringIO()
        console = Console(file=buf, width=self.width, force_terminal=self.color, no_color=not self.color)
        print_report(data, console)
        return buf.getvalue()


def console_width(stream: IO[str]) -> int | None:
    """The width text output is laid out at: a terminal's own (``None``), else
    :attr:`TextRenderer.width_default` (a file or a pipe). Every command printing reports uses it."""
    return None if stream.isatty() else TextRenderer.width_default

"""The diff as text: the headline, the per-layer table, the route rows that changed, the failures."""

from __future__ import annotations

import io
from typing import Any

from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from tracekit.analyze.renderers.text import LAYER_STYLES, TextRenderer, clean
from tracekit.diff.compare import changed_rows, fmt_ms

_VERDICT_STYLE = {"regressed": "bold red", "improved": "bold green", "unchanged": "dim"}


def _num(value: float) -> str:
    return fmt_ms(value).removesuffix(" ms")


def _shift(row: dict[str, Any]) -> str:
    return fmt_ms(row["shift_ms"], sign=True).removesuffix(" ms")


def _ci(row: dict[str, Any]) -> str:
    low, high = row["ci_ms"]
    return f"{_shift({'shift_ms': low})} .. {_shift({'shift_ms': high})}"


def _verdict(row: dict[str, Any]) -> Text:
    return Text(row["verdict"], style=_VERDICT_STYLE[row["verdict"]])


def _layer(layer: str) -> Text:
    return Text(layer, style=LAYER_STYLES.get(layer, "white"))


def _sources(side: dict[str, Any]) -> str:
    sources = side["sources"]
    shown = ", ".join(sources[:3]) + (f" and {len(sources) - 3} more" if len(sources) > 3 else "")
    read = f" (of {side['traces_read']:,} read)" if "traces_read" in side else ""
    noun = "trace" if side["traces"] == 1 else "traces"
    return f"{side['traces']:,} {noun}{read} from {shown}"


def layer_table(result: dict[str, Any]) -> Table:
    confidence = result["settings"]["confidence"]
    table = Table(
        title="Time per request, per layer (ms): baseline -> candidate",
        box=box.SIMPLE_HEAVY,
        title_justify="left",
    )
    columns = ("layer", "p50", "p95", "p99", "mean", "shift", f"{confidence:.0%} CI", "p", "verdict")
    for col in columns:
        table.add_column(col, justify="left" if col in ("layer", "verdict") else "right", no_wrap=True)
    for layer, row in result["layers"].items():
        base, cand = row["baseline"], row["candidate"]
        table.add_row(
            _layer(layer),
            *(f"{_num(base[k])} -> {_num(cand[k])}" for k in ("p50_ms", "p95_ms", "p99_ms", "mean_ms")),
            _shift(row),
            _ci(row),
            f"{row['p_value']:.2g}",
            _verdict(row),
        )
    return table


def route_table(result: dict[str, Any]) -> Table | None:
    """Route rows whose verdict is not ``unchanged``, regressions first."""
    rows = [(r, layer, row) for r, layer, row in changed_rows(result, "regressed") if r is not None]
    rows += [(r, layer, row) for r, layer, row in changed_rows(result, "improved") if r is not None]
    if not rows:
        return None
    confidence = result["settings"]["confidence"]
    table = Table(title="Routes that changed (ms)", box=box.SIMPLE, title_justify="left")
    for col in ("route", "layer", "requests", "p50", "p95", "shift", f"{confidence:.0%} CI", "p", "verdict"):
        table.add_column(col, justify="left" if col in ("route", "layer", "verdict") else "right")
    for route, layer, row in rows:
        base, cand = row["baseline"], row["candidate"]
        table.add_row(
            Text(clean(route)),
            _layer(layer),
            f"{base['traces']:,} / {cand['traces']:,}",
            f"{_num(base['p50_ms'])} -> {_num(cand['p50_ms'])}",
            f"{_num(base['p95_ms'])} -> {_num(cand['p95_ms'])}",
            _shift(row),
            _ci(row),
            f"{row['p_value']:.2g}",
            _verdict(row),
        )
    return table


def failure_table(result: dict[str, Any]) -> Table | None:
    """Failed requests per layer and kind; the layer's failure-rate test on each of its rows."""
    kinds = result["failure_kinds"]
    if not kinds:
        return None
    base_n, cand_n = result["baseline"]["traces"], result["candidate"]["traces"]
    table = Table(title="Failed requests, by layer and kind", box=box.SIMPLE, title_justify="left")
    for col in ("layer", "kind", "baseline", "candidate", "p (layer)", "layer verdict"):
        table.add_column(col, justify="left" if col in ("layer", "kind", "layer verdict") else "right")
    for item in kinds:
        layer = result["failures"][item["layer"]]
        table.add_row(
            _layer(item["layer"]),
            Text(clean(item["kind"])),
            f"{item['baseline']:,} ({item['baseline'] / base_n:.1%})",
            f"{item['candidate']:,} ({item['candidate'] / cand_n:.1%})",
            f"{layer['p_value']:.2g}",
            _verdict(layer),
        )
    return table


def renderables(result: dict[str, Any]) -> list[RenderableType]:
    style = _VERDICT_STYLE[result["verdict"]].replace("dim", "bold")
    settings = result["settings"]
    parts: list[RenderableType] = [
        Text(clean(result["headline"]), style=style),
        Text(
            f"baseline: {_sources(result['baseline'])}\ncandidate: {_sources(result['candidate'])}\n"
            f"shift: Hodges-Lehmann, {settings['confidence']:.0%} interval; p: Mann-Whitney U, "
            f"Benjamini-Hochberg over {settings['comparisons']} comparisons; unchanged below "
            f"{fmt_ms(settings['min_shift_ms'])} or {settings['min_shift_ratio']:.0%} of the baseline median",
            style="dim",
        ),
        layer_table(result),
    ]
    table = route_table(result)
    if table is not None:
        parts.append(table)
    skipped = result["routes_not_compared"]
    if skipped:
        names = clean(", ".join(f"{r['route']} ({r['baseline']}/{r['candidate']})" for r in skipped[:5]))
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        parts.append(
            Text(
                f"{len(skipped)} route(s) not compared (fewer than {result['settings']['min_route_traces']} "
                f"requests on a side): {names}{more}",
                style="dim",
            )
        )
    table = failure_table(result)
    if table is not None:
        parts.append(table)
    if result["new_failure_reasons"]:
        lines = Text("Failure reasons new in the candidate:\n", style="bold")
        for item in result["new_failure_reason_counts"]:
            lines.append(f"  {item['candidate']:>6,}  {clean(item['reason'])}\n")
        parts.append(lines)
    return parts


def print_diff(result: dict[str, Any], console: Console) -> None:
    for part in renderables(result):
        console.print(part)


def render_text(result: dict[str, Any], width: int = TextRenderer.width_default) -> str:
    """The text output without colours (files, pipes, tests)."""
    buf = io.StringIO()
    print_diff(result, Console(file=buf, width=width, color_system=None, highlight=False))
    return buf.getvalue()

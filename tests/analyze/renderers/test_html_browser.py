"""The HTML report opened in a real headless Chromium: it draws, shows the JSON's numbers, fetches nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.analyze.renderers.shopdata import HOSTILE_SQL, handmade_report, report_from_traces
from tracekit.analyze.renderers.html import render_html

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]  # headless Chromium


def fmt_ms(value: float | None) -> str:
    """The page's fmtMs, in Python."""
    if value is None:
        return "\u2013"  # en dash, as the page writes it
    a = abs(value)
    if a >= 100:
        return f"{value:.0f} ms"
    if a >= 10:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms"


def fmt_pct(share: float) -> str:
    return f"{share * 100:.1f}%"


@pytest.fixture()
def shop_page(open_report: Any, shop_report: dict[str, Any]) -> Any:
    return open_report(render_html(shop_report))


def test_page_draws_without_errors_or_requests(shop_page: Any, artifacts: Path) -> None:
    page = shop_page.page
    page.screenshot(path=str(artifacts / "report-shop.png"), full_page=True)
    assert shop_page.console_errors == []
    assert shop_page.external_requests == []
    # The hostile attribute is shown as text in the details, never run as a script.
    assert page.evaluate("typeof window.__pwned") == "undefined"


def test_summary_cards_show_the_json_numbers(shop_page: Any, shop_report: dict[str, Any]) -> None:
    page, summary = shop_page.page, shop_report["summary"]
    assert page.inner_text("#tk-card-traces .v") == str(summary["traces"])
    assert page.inner_text("#tk-card-spans .v") == str(summary["spans"])
    assert page.inner_text("#tk-card-errors .v") == str(summary["error_traces"])
    durations = sorted(t["duration_ms"] for t in shop_report["traces"])
    assert page.inner_text("#tk-card-p50 .v") == fmt_ms(durations[len(durations) // 2])


def test_layer_table_matches_the_summary(shop_page: Any, shop_report: dict[str, Any]) -> None:
    page, layers = shop_page.page, shop_report["summary"]["layers"]
    rows = page.query_selector_all("#tk-layer-table tbody tr")
    assert [r.get_attribute("data-layer") for r in rows] == [
        name
        for name in ("client", "edge", "ingress", "service", "app", "sidecar", "db", "external", "unknown")
        if name in layers
    ]
    for row in rows:
        stats = layers[row.get_attribute("data-layer")]
        assert row.query_selector(".share").inner_text() == fmt_pct(stats["share"])
        for key in ("mean", "p50", "p95", "p99"):
            cell = row.query_selector(f".{key}")
            assert float(cell.get_attribute("data-value")) == pytest.approx(stats[f"{key}_ms"])
            assert cell.inner_text() == fmt_ms(stats[f"{key}_ms"])
    # The share bar has one segment per layer with time, widths in proportion.
    segments = page.query_selector_all("#tk-share .tk-seg")
    assert {s.get_attribute("data-layer") for s in segments} == set(layers)


def test_flow_diagram_shows_the_request_path(shop_page: Any, shop_report: dict[str, Any]) -> None:
    page = shop_page.page
    nodes = {n.get_attribute("data-node"): n for n in page.query_selector_all("#tk-flow-svg g.node")}
    by_label = {n.query_selector("text.t").text_content(): n for n in nodes.values()}
    assert {"loadgen", "ingress", "web-service", "shop", "shop-db", "sqlite"} <= set(by_label)
    total, errors = shop_report["summary"]["traces"], shop_report["summary"]["error_traces"]
    client = by_label["loadgen"]
    assert client.get_attribute("data-count") == str(total)
    assert client.get_attribute("data-errors") == str(errors)
    assert f"{total} req" in client.text_content()
    # Two pod replicas, each a box around its app and db containers and its SQLite file.
    pods = page.query_selector_all("#tk-flow-svg g.pod")
    assert sorted(p.get_attribute("data-pod") for p in pods) == [
        "shop-7d9f8c6b5-abcde",
        "shop-7d9f8c6b5-fghij",
    ]
    app_nodes = [n for n in nodes.values() if n.get_attribute("data-layer") == "app"]
    assert len(app_nodes) == 2
    assert sum(int(n.get_attribute("data-count")) for n in app_nodes) == 6  # the 503 never reached a pod
    edges = page.query_selector_all("#tk-flow-svg g.edge[data-from]")
    ingress_to_service = [
        e
        for e in edges
        if e.get_attribute("data-from").startswith("p|ingress")
        and e.get_attribute("data-to").startswith("s|")
    ]
    assert len(ingress_to_service) == 1
    assert ingress_to_service[0].get_attribute("data-count") == str(total)


def test_waterfall_marks_critical_path_network_gaps_and_details(
    shop_page: Any, shop_report: dict[str, Any]
) -> None:
    page = shop_page.page
    slowest = max(shop_report["traces"], key=lambda t: t["duration_ms"])
    assert page.get_attribute("#tk-trace-head", "data-trace-id") == slowest["trace_id"]
    assert page.inner_text("#tk-wf-duration") == fmt_ms(slowest["duration_ms"])
    rows = page.query_selector_all("#tk-waterfall .tk-wf-row")
    assert len(rows) == len(slowest["spans"])
    critical = {s["span_id"] for s in slowest["spans"] if s["critical"]}
    assert {
        r.get_attribute("data-span-id") for r in rows if r.get_attribute("data-critical") == "true"
    } == critical
    assert len(page.query_selector_all("#tk-waterfall .tk-bar.critical")) == len(critical)
    # Network time: loadgen->ingress (edge) and ingress->pod (service) hops are visible as gaps.
    gaps = page.query_selector_all("#tk-waterfall .tk-gap")
    assert len(gaps) >= 3
    assert sum(float(g.get_attribute("data-gap-ms")) for g in gaps[:2]) == pytest.approx(
        slowest["layers"]["edge"]
    )
    # Click the database span: its attributes (k8s.* from the resource, the hostile SQL as text) show.
    db_span = next(s for s in slowest["spans"] if s["name"] == "SELECT products")
    page.click(f"#tk-waterfall .tk-wf-row[data-span-id='{db_span['span_id']}']")
    details = page.inner_text("#tk-span-details")
    assert "k8s.pod.name" in details and "shop-7d9f8c6b5-abcde" in details
    assert HOSTILE_SQL in details
    # Hover shows a tooltip.
    page.hover(f"#tk-waterfall .tk-wf-row[data-span-id='{db_span['span_id']}'] .tk-bar")
    assert page.is_visible("#tk-tip")
    assert "SELECT products" in page.inner_text("#tk-tip")


def test_trace_selection_works_from_the_keyboard(shop_page: Any) -> None:
    page = shop_page.page
    first = page.get_attribute("#tk-trace-head", "data-trace-id")
    page.focus("#tk-trace-list")
    page.keyboard.press("ArrowDown")
    second = page.get_attribute("#tk-trace-head", "data-trace-id")
    assert second != first
    assert page.get_attribute(".tk-opt[aria-selected='true']", "data-trace-id") == second
    page.keyboard.press("ArrowUp")
    assert page.get_attribute("#tk-trace-head", "data-trace-id") == first
    # A span row opens its details with Enter.
    page.focus("#tk-waterfall .tk-wf-row")
    page.keyboard.press("Enter")
    assert page.is_visible("#tk-span-details")


def test_failures_grouped_by_layer_and_reason(shop_page: Any, shop_report: dict[str, Any]) -> None:
    page = shop_page.page
    failed = [t for t in shop_report["traces"] if t["status"] == "error"]
    rows = page.query_selector_all("#tk-failure-table tbody tr")
    assert sorted(r.get_attribute("data-layer") for r in rows) == sorted(
        {t["diagnosis"]["failed_layer"] for t in failed}
    )
    assert sum(int(r.get_attribute("data-count")) for r in rows) == len(failed)
    db_row = next(r for r in rows if r.get_attribute("data-layer") == "db")
    db_trace = next(t for t in failed if t["diagnosis"]["failed_layer"] == "db")
    assert db_trace["diagnosis"]["reason"] in db_row.inner_text()
    db_row.query_selector("button.ex").click()
    assert page.get_attribute("#tk-trace-head", "data-trace-id") == db_trace["trace_id"]
    assert "db" in page.inner_text("#tk-wf-diagnosis")


def test_handmade_report_without_extras_draws_too(open_report: Any) -> None:
    """Only the JSON contract keys (no routes/services/failures extras): the page still draws."""
    opened = open_report(render_html(handmade_report()))
    assert opened.console_errors == [] and opened.external_requests == []
    assert opened.page.inner_text("#tk-card-traces .v") == "7"
    assert len(opened.page.query_selector_all("#tk-flow-svg g.node")) >= 6


def test_report_without_spans_falls_back_to_hops(open_report: Any) -> None:
    report = report_from_traces([{**t, "spans": []} for t in handmade_report()["traces"]])
    report["summary"]["spans"] = 45
    opened = open_report(render_html(report))
    assert opened.console_errors == []
    assert len(opened.page.query_selector_all("#tk-flow-svg g.node")) >= 4
    assert "without spans" in opened.page.inner_text("#tk-waterfall")


def test_large_input_embeds_a_sample(open_report: Any, artifacts: Path) -> None:
    """2,000 traces: the list holds at most 50 waterfalls, the cards still count every trace."""
    base = handmade_report()["traces"]
    traces = []
    for i in range(2000):
        t = dict(base[i % len(base)])
        t["trace_id"] = f"{i + 1:032x}"
        t["duration_ms"] = t["duration_ms"] * (1 + (i % 97) / 50)
        traces.append(t)
    opened = open_report(render_html(report_from_traces(traces)), name="large.html")
    page = opened.page
    assert opened.console_errors == [] and opened.external_requests == []
    assert page.inner_text("#tk-card-traces .v") == "2,000"
    options = page.query_selector_all("#tk-trace-list .tk-opt")
    assert 10 <= len(options) <= 50
    page.screenshot(path=str(artifacts / "report-large.png"), full_page=False)


def test_empty_report_draws(open_report: Any) -> None:
    opened = open_report(
        render_html({"summary": {"traces": 0, "spans": 0, "error_traces": 0, "layers": {}}, "traces": []})
    )
    assert opened.console_errors == [] and opened.external_requests == []
    assert opened.page.inner_text("#tk-card-traces .v") == "0"
    assert opened.page.is_visible("#tk-no-failures")

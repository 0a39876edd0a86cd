"""The diff page in a real headless Chromium: it draws the distributions from the data, shows the JSON's
numbers and verdicts, runs no injected script and fetches nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.diff.pages import HOSTILE_REASON, HOSTILE_ROUTE, regression
from tracekit.diff.html import render_html

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    return regression()


@pytest.fixture()
def page(open_report: Any, result: dict[str, Any]) -> Any:
    return open_report(render_html(result), name="diff.html")


def test_page_draws_without_errors_or_requests(page: Any, artifacts: Path) -> None:
    page.page.screenshot(path=str(artifacts / "diff-regression.png"), full_page=True)
    assert page.console_errors == []
    assert page.external_requests == []
    assert page.page.evaluate("typeof window.__pwned") == "undefined"


def test_headline_and_verdicts(page: Any, result: dict[str, Any]) -> None:
    p = page.page
    assert p.inner_text("#dk-headline") == result["headline"]
    assert "regressed" in (p.get_attribute("#dk-headline", "class") or "")
    for layer, row in result["layers"].items():
        card = p.query_selector(f".dk-layer[data-layer='{layer}']")
        assert card is not None
        assert row["verdict"] in (card.get_attribute("class") or "").split()
        assert card.query_selector(".dk-verdict").inner_text().lower() == row["verdict"]
    assert result["layers"]["db"]["verdict"] == "regressed"


def test_each_layer_draws_both_distributions_from_the_data(page: Any, result: dict[str, Any]) -> None:
    p = page.page
    for layer, row in result["layers"].items():
        svg = p.query_selector(f"svg.dk-ecdf[data-layer='{layer}']")
        assert svg is not None
        for side in ("baseline", "candidate"):
            path = svg.query_selector(f"path[data-side='{side}']")
            points = len(row["distribution"][side])
            assert int(path.get_attribute("data-points")) == points
            # One vertex per quantile, plus the start on the axis.
            assert path.get_attribute("d").count("L") == points
        # Drawn on screen, inside the card.
        box = svg.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 80
    # The shifted layer's candidate curve lies to the right of its baseline (same scale, same y).
    db = p.query_selector("svg.dk-ecdf[data-layer='db']")
    base_box = db.query_selector("path[data-side='baseline']").bounding_box()
    cand_box = db.query_selector("path[data-side='candidate']").bounding_box()
    assert cand_box["x"] > base_box["x"]


def test_tables_show_the_json_numbers(page: Any, result: dict[str, Any]) -> None:
    p = page.page
    rows = p.query_selector_all("#dk-layer-table tbody tr")
    assert [r.get_attribute("data-layer") for r in rows] == list(result["layers"])
    for r in rows:
        row = result["layers"][r.get_attribute("data-layer")]
        assert float(r.query_selector(".shift").get_attribute("data-value")) == pytest.approx(row["shift_ms"])
        assert float(r.query_selector(".p").get_attribute("data-value")) == pytest.approx(row["p_value"])
        p50 = r.query_selector(".p50")
        assert float(p50.get_attribute("data-baseline")) == pytest.approx(row["baseline"]["p50_ms"])
        assert float(p50.get_attribute("data-candidate")) == pytest.approx(row["candidate"]["p50_ms"])
    changed = {
        (e["route"], layer)
        for e in result["routes"]
        for layer, row in e["layers"].items()
        if row["verdict"] != "unchanged"
    }
    shown = {
        (r.get_attribute("data-route"), r.get_attribute("data-layer"))
        for r in p.query_selector_all("#dk-route-table tbody tr")
    }
    assert shown == changed and (HOSTILE_ROUTE, "db") in shown


def test_failures_and_new_reasons_as_text(page: Any) -> None:
    p = page.page
    row = p.query_selector("#dk-failure-table tr[data-layer='db'][data-kind='db-error']")
    assert row.query_selector(".baseline").inner_text() == "0"
    assert row.query_selector(".candidate").inner_text() == "12"
    assert (
        row.query_selector(".verdict").inner_text() == "regressed"
    )  # 12 of 400 against none: Fisher p < 0.01
    assert p.inner_text("#dk-new-reasons li") == f"12 \u00d7 {HOSTILE_REASON}"

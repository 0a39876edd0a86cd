"""Ground truth end to end: generated captures (OTLP lines, Zipkin) with a known shift on one layer go
through the analyzer, and the diff names exactly that layer (and route), its interval holding the shift."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from tests.diff.captures import ROUTES, capture, write_otlp, write_zipkin
from tracekit.diff import DiffOptions, ReadOptions, diff, read_side


def _diff(
    tmp_path: Path, base: Any, cand: Any, options: DiffOptions | None = None, zipkin: bool = True
) -> dict[str, Any]:
    """Baseline as Collector OTLP lines, candidate as Zipkin v2 (or OTLP too), read through the analyzer."""
    b = write_otlp(tmp_path / "base.jsonl", base)
    c = write_zipkin(tmp_path / "cand.json", cand) if zipkin else write_otlp(tmp_path / "cand.jsonl", cand)
    return diff(
        read_side("baseline", [str(b)], ReadOptions()),
        read_side("candidate", [str(c)], ReadOptions()),
        options,
    )


def _changed(result: dict[str, Any]) -> tuple[set[str], set[tuple[str, str]]]:
    layers = {layer for layer, row in result["layers"].items() if row["verdict"] != "unchanged"}
    routes = {
        (e["route"], layer)
        for e in result["routes"]
        for layer, row in e["layers"].items()
        if row["verdict"] != "unchanged"
    }
    return layers, routes


@pytest.mark.parametrize("layer", ["db", "ingress", "app"])
def test_a_shift_on_every_route_is_named_with_its_interval(tmp_path: Path, layer: str) -> None:
    shift = 3.0
    result = _diff(
        tmp_path, capture(300, 1), capture(300, 2, shift_layer=layer, shift_ms=shift, first=10_000)
    )
    layers, routes = _changed(result)
    assert layers == {layer}
    assert routes == {(f"GET {r}", layer) for r in ROUTES}
    row = result["layers"][layer]
    assert row["verdict"] == "regressed"
    assert row["ci_ms"][0] <= shift <= row["ci_ms"][1]
    assert result["verdict"] == "regressed"
    assert result["headline"].startswith(f"regressed: {layer} +")


def test_a_shift_on_one_route_is_named_on_that_route(tmp_path: Path) -> None:
    shift = 4.0
    base = capture(450, 3)
    cand = capture(450, 4, shift_layer="db", shift_ms=shift, shift_route="/api/cart", first=10_000)
    result = _diff(tmp_path, base, cand)
    layers, routes = _changed(result)
    assert routes == {("GET /api/cart", "db")}
    assert layers <= {"db"}
    row = next(e for e in result["routes"] if e["route"] == "GET /api/cart")["layers"]["db"]
    assert row["ci_ms"][0] <= shift <= row["ci_ms"][1]
    assert result["headline"].startswith("regressed: db on GET /api/cart +")
    assert "also regressed" not in result["headline"]


def test_an_improvement_is_an_improvement(tmp_path: Path) -> None:
    result = _diff(tmp_path, capture(300, 5, shift_layer="app", shift_ms=4.0), capture(300, 6, first=10_000))
    assert result["layers"]["app"]["verdict"] == "improved"
    assert result["verdict"] == "improved"
    assert result["layers"]["app"]["ci_ms"][0] <= -4.0 <= result["layers"]["app"]["ci_ms"][1]


def test_the_figures_are_the_injected_ones(tmp_path: Path) -> None:
    """Both sides' percentiles are those of the drawn per-layer times (the analyzer found them exactly)."""
    import numpy as np

    from tests.diff.captures import layer_ms

    base, cand = capture(200, 7), capture(200, 8, first=10_000)
    result = _diff(tmp_path, base, cand)
    for layer in ("edge", "ingress", "app", "db"):
        for side, traces in (("baseline", base), ("candidate", cand)):
            truth = np.array(layer_ms(traces, layer))
            got = result["layers"][layer][side]
            assert got["p50_ms"] == pytest.approx(float(np.percentile(truth, 50)), abs=1e-6)
            assert got["p99_ms"] == pytest.approx(float(np.percentile(truth, 99)), abs=1e-6)
            assert got["count"] == int(np.count_nonzero(truth))


def test_more_failures_alone_are_a_regression(tmp_path: Path) -> None:
    """No layer slower, but one request in ten now breaks in the database: the failure rate regressed."""
    base = capture(300, 9, failure="app", failure_every=50)
    cand = capture(300, 10, failure="db", failure_every=10, first=10_000)
    result = _diff(tmp_path, base, cand)
    assert result["failures"]["db"]["verdict"] == "regressed"
    assert (result["failures"]["db"]["baseline"], result["failures"]["db"]["candidate"]) == (0, 30)
    # 6 app failures against 0: too few to call (Fisher's exact test), so unchanged.
    assert result["failures"]["app"]["verdict"] == "unchanged"
    assert result["verdict"] == "regressed"
    assert result["headline"].startswith("regressed: db failures 0 of 300 -> 30 of 300 requests")
    assert any("database" in reason for reason in result["new_failure_reasons"])


def test_same_failure_rate_is_unchanged(tmp_path: Path) -> None:
    base = capture(300, 11, failure="db", failure_every=10)
    cand = capture(300, 12, failure="db", failure_every=10, first=10_000)
    # One format on both sides: Zipkin carries no exception events, so its reason words differ.
    result = _diff(tmp_path, base, cand, zipkin=False)
    assert result["failures"]["db"]["verdict"] == "unchanged"
    assert result["new_failure_reasons"] == []  # the same reason on both sides


@pytest.mark.slow
def test_same_distribution_captures_through_the_analyzer_stay_unchanged(tmp_path: Path) -> None:
    """Many same-distribution pairs (different seeds) read from files: flagged at most at alpha's rate
    with no practical floor, and never with the default floors."""
    alpha, pairs = 0.05, 120
    bare = DiffOptions(alpha=alpha, min_shift_ms=0.0, min_shift_ratio=0.0)
    flagged = flagged_default = 0
    for i in range(pairs):
        b = read_side(
            "baseline", [str(write_otlp(tmp_path / "b.jsonl", capture(120, 2 * i + 100)))], ReadOptions()
        )
        c = read_side(
            "candidate",
            [str(write_zipkin(tmp_path / "c.json", capture(120, 2 * i + 101, first=10_000)))],
            ReadOptions(),
        )
        flagged += diff(b, c, bare)["verdict"] != "unchanged"
        flagged_default += diff(b, c)["verdict"] != "unchanged"
    print(
        f"false-positive rate through the analyzer: {flagged / pairs:.3f} of {pairs} pairs at alpha {alpha}"
    )
    assert flagged / pairs <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / pairs)
    assert flagged_default == 0

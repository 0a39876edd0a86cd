"""The diff's statistics against brute force and against their promises (coverage, false positives)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracekit.diff import stats
from tracekit.diff.compare import DiffOptions, diff
from tracekit.diff.sides import SideBuilder

values = st.lists(
    st.one_of(st.just(0.0), st.integers(0, 50_000).map(lambda us: us / 1000)), min_size=1, max_size=60
)


@given(values, values, st.data())
def test_kth_difference_bisection_matches_brute_force(
    x: list[float], y: list[float], data: st.DataObject
) -> None:
    xs, ys = np.sort(np.array(x)), np.sort(np.array(y))
    every = np.sort(np.subtract.outer(ys, xs).ravel())
    k = data.draw(st.integers(1, every.size))
    old = stats.DIRECT_PAIRS
    stats.DIRECT_PAIRS = 0  # force the large-sample path on small inputs
    try:
        got = stats.kth_difference(xs, ys, k)
    finally:
        stats.DIRECT_PAIRS = old
    assert got == pytest.approx(every[k - 1], abs=1e-9)


def test_large_sample_path_is_exact_with_many_ties() -> None:
    rng = np.random.default_rng(3)
    x = np.sort(np.where(rng.random(1500) < 0.6, 0.0, np.round(rng.lognormal(0, 1, 1500), 3)))
    y = np.sort(np.where(rng.random(1400) < 0.5, 0.0, np.round(rng.lognormal(0.2, 1, 1400), 3)))
    every = np.sort(np.subtract.outer(y, x).ravel())
    old = stats.DIRECT_PAIRS
    stats.DIRECT_PAIRS = 0
    try:
        for k in (1, 17, every.size // 3, every.size // 2, every.size // 2 + 1, every.size - 5, every.size):
            assert stats.kth_difference(x, y, k) == pytest.approx(every[k - 1], abs=1e-9)
    finally:
        stats.DIRECT_PAIRS = old


def test_hodges_lehmann_is_the_median_of_pairwise_differences() -> None:
    x = np.sort(np.array([1.0, 2.0, 4.0, 8.0]))
    y = np.sort(np.array([3.0, 5.0, 9.0]))
    shift, low, high = stats.hodges_lehmann(x, y, 0.05)
    assert shift == float(np.median(np.subtract.outer(y, x)))
    assert low <= shift <= high


def test_interval_covers_a_known_shift_at_the_promised_rate() -> None:
    """Over many samples of a skewed distribution shifted by 2 ms, the 95% interval holds 2 ms about
    95% of the time (and the p-value agrees with the interval)."""
    rng = np.random.default_rng(11)
    trials, covered = 600, 0
    for _ in range(trials):
        x = rng.lognormal(1.0, 0.8, 80)
        y = rng.lognormal(1.0, 0.8, 70) + 2.0
        result = stats.compare(x, y, 0.05)
        covered += result.ci_low_ms <= 2.0 <= result.ci_high_ms
    rate = covered / trials
    bound = 3 * math.sqrt(0.05 * 0.95 / trials)
    assert abs(rate - 0.95) <= bound, rate


def test_identical_constant_samples_are_not_different() -> None:
    result = stats.compare(np.zeros(20), np.zeros(30), 0.01)
    assert (result.shift_ms, result.ci_low_ms, result.ci_high_ms, result.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_verdict_needs_significance_and_the_floor() -> None:
    assert stats.verdict(5.0, 0.001, 0.01, 1.0) == "regressed"
    assert stats.verdict(-5.0, 0.001, 0.01, 1.0) == "improved"
    assert stats.verdict(5.0, 0.02, 0.01, 1.0) == "unchanged"  # not significant
    assert stats.verdict(0.5, 1e-30, 0.01, 1.0) == "unchanged"  # significant, too small to matter
    assert stats.floor_ms(100.0, 1.0, 0.05) == 5.0
    assert stats.floor_ms(2.0, 1.0, 0.05) == 1.0


LAYER_SHAPES = {  # layer: (median ms, sigma, share of requests that spend time there)
    "ingress": (0.7, 0.4, 1.0),
    "app": (6.0, 0.6, 1.0),
    "sidecar": (0.7, 0.3, 0.8),
    "db": (2.0, 0.8, 0.8),
    "external": (30.0, 1.0, 0.1),
}
ROUTES = ("GET /a", "GET /b", "POST /c")


def _side(
    rng: np.random.Generator, n: int, shift: dict[tuple[str, str | None], float] | None = None
) -> object:
    builder = SideBuilder("side")
    shift = shift or {}
    routes = rng.integers(0, len(ROUTES), n)
    draws = {
        layer: np.where(rng.random(n) < share, rng.lognormal(math.log(median), sigma, n), 0.0)
        for layer, (median, sigma, share) in LAYER_SHAPES.items()
    }
    for i in range(n):
        route = ROUTES[routes[i]]
        layers = {}
        for layer, values in draws.items():
            ms = float(values[i])
            if ms:
                ms += shift.get((layer, None), 0.0) + shift.get((layer, route), 0.0)
            layers[layer] = ms
        builder.add(layers, route)
    return builder.side([f"seed-{rng.integers(1 << 30)}"])


@pytest.mark.slow
def test_same_distribution_pairs_come_out_unchanged_at_the_rate_alpha_promises() -> None:
    """Pairs of captures drawn from one distribution (different seeds), no practical floor: the share
    of pairs where anything at all is flagged stays within alpha (Benjamini-Hochberg keeps the
    family-wise rate under the complete null), and each raw test rejects at about alpha (calibrated,
    not merely conservative)."""
    alpha, pairs = 0.05, 300
    options = DiffOptions(alpha=alpha, min_shift_ms=0.0, min_shift_ratio=0.0)
    rng = np.random.default_rng(2026)
    flagged = raw_rejections = comparisons = 0
    for _ in range(pairs):
        result = diff(_side(rng, 150), _side(rng, 150), options)  # type: ignore[arg-type]
        rows = list(result["layers"].values()) + [r for e in result["routes"] for r in e["layers"].values()]
        flagged += result["verdict"] != "unchanged"
        raw_rejections += sum(r["p_raw"] < alpha for r in rows)
        comparisons += len(rows)
    family_rate = flagged / pairs
    raw_rate = raw_rejections / comparisons
    print(
        f"false-positive rate: {family_rate:.3f} of {pairs} pairs; raw tests {raw_rate:.4f} of {comparisons}"
    )
    assert family_rate <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / pairs)
    # Rows of one pair share data (overall and per route), so the raw count is not binomial: a wide band.
    assert 0.5 * alpha <= raw_rate <= 1.5 * alpha


def test_a_shift_on_one_route_is_found_there_only() -> None:
    rng = np.random.default_rng(5)
    base = _side(rng, 600)
    cand = _side(rng, 600, {("db", "GET /b"): 4.0})
    result = diff(base, cand)  # type: ignore[arg-type]
    changed = [
        (e["route"], layer)
        for e in result["routes"]
        for layer, r in e["layers"].items()
        if r["verdict"] != "unchanged"
    ]
    assert changed == [("GET /b", "db")]
    row = next(e for e in result["routes"] if e["route"] == "GET /b")["layers"]["db"]
    assert row["ci_ms"][0] <= 4.0 <= row["ci_ms"][1]
    assert all(r["verdict"] == "unchanged" for layer, r in result["layers"].items() if layer != "db")


small_sides = st.lists(
    st.tuples(
        st.dictionaries(
            st.sampled_from(["edge", "app", "db", "external"]),
            st.one_of(st.just(0.0), st.integers(0, 10**7).map(lambda ns: ns / 1e6)),
        ),
        st.sampled_from(["GET /a", "GET /b"]),
        st.sampled_from([None, "db", "app"]),
    ),
    min_size=1,
    max_size=40,
)


@pytest.mark.slow
@given(small_sides, small_sides, st.sampled_from([0.01, 0.05, 0.5]))
def test_any_pair_of_sides_gives_finite_ordered_figures(
    base: list[Any], cand: list[Any], alpha: float
) -> None:
    """Whatever the inputs (one request, all zeros, ties, layers on one side only): every figure is
    finite, every interval holds its shift, every p-value is a probability."""
    sides = []
    for rows in (base, cand):
        builder = SideBuilder("side")
        for layers, route, failed in rows:
            builder.add(
                layers, route, failed, "error" if failed else None, f"{failed} broke" if failed else None
            )
        sides.append(builder.side(["x"]))
    result = diff(sides[0], sides[1], DiffOptions(alpha=alpha, min_route_traces=2))
    rows = list(result["layers"].values()) + [r for e in result["routes"] for r in e["layers"].values()]
    for row in rows:
        low, high = row["ci_ms"]
        assert math.isfinite(low) and math.isfinite(high) and low <= row["shift_ms"] <= high
        assert 0.0 <= row["p_raw"] <= 1.0 and 0.0 <= row["p_value"] <= 1.0
    for entry in result["failures"].values():
        assert 0.0 <= entry["p_value"] <= 1.0
    assert isinstance(result["headline"], str) and result["headline"]

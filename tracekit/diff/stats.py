"""The statistics of a diff: is one side's layer time shifted against the other's, by how much, surely?

Latency per layer is skewed, heavy-tailed, often zero (a request that never reached the database spent
0 ms there) and full of ties. So nothing here assumes a distribution:

- the **shift** is the Hodges-Lehmann estimate, the median of every pairwise difference
  ``candidate_j - baseline_i``: the typical change of one request, robust to the tail;
- its **confidence interval** is Moses' distribution-free interval: two order statistics of the same
  pairwise differences, picked by the Mann-Whitney null distribution (normal approximation with the tie
  correction), so the interval and the test agree;
- the **p-value** is the two-sided Mann-Whitney U test (``scipy.stats.mannwhitneyu``): exact for small
  samples without ties, asymptotic with the tie correction otherwise. A bootstrap was the other choice;
  it was left out because it costs thousands of resamples per comparison (a million traces, hundreds of
  route-layer pairs), its percentile intervals for a median are poor on tied and discrete data, and its
  answer changes with the random seed; U is O(n log n), deterministic and needs no assumption.
- **several comparisons** (every layer, every route's layers) are corrected together with the
  Benjamini-Hochberg procedure (``scipy.stats.false_discovery_control``). When nothing changed, it keeps
  the chance that the diff flags anything at all at ``alpha`` (under the complete null the false
  discovery rate is the family-wise error rate); when something did change, at most ``alpha`` of the
  flagged rows are expected to be false, and a shifted layer that shows on every route is not diluted
  the way Bonferroni would dilute it.

The pairwise differences are never materialised for large samples: the k-th smallest one is found by
bisection on its value, counting differences below a value with one ``searchsorted`` (O(m log n)), then
snapped to the exact difference. Small samples take the direct route (all differences, partitioned).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import stats as sps

Floats = NDArray[np.float64]

#: Below this many pairwise differences they are built and partitioned outright.
DIRECT_PAIRS = 1_000_000
#: Bisection stops when the bracket holds at most this many differences (or one per candidate value).
_ENUMERATE = 4096
#: Differences closer than this (ms) are one value: times are integer nanoseconds (1e-6 ms).
_RESOLUTION_MS = 1e-7


@dataclass(frozen=True)
class Shift:
    """A two-sample comparison: the Hodges-Lehmann shift, its interval and the Mann-Whitney p-value."""

    shift_ms: float
    ci_low_ms: float
    ci_high_ms: float
    p_value: float


def _count_at_most(x: Floats, y: Floats, d: float) -> int:
    """How many pairwise differences ``y_j - x_i`` are <= ``d`` (``x`` and ``y`` sorted)."""
    # y_j - x_i <= d  <=>  x_i >= y_j - d
    return int(x.size * y.size - np.searchsorted(x, y - d, side="left").sum())


def _between(x: Floats, y: Floats, lo: float, hi: float) -> Floats:
    """Every pairwise difference ``y_j - x_i`` in ``(lo, hi]``, i.e. with ``y_j - hi <= x_i < y_j - lo``."""
    first = np.searchsorted(x, y - hi, side="left")
    stop = np.searchsorted(x, y - lo, side="left")
    lengths = stop - first
    which = np.repeat(np.arange(y.size), lengths)
    starts = np.cumsum(lengths) - lengths
    i = first[which] + (np.arange(which.size) - starts[which])
    return np.asarray(y[which] - x[i], dtype=np.float64)


def _smallest_above(x: Floats, y: Floats, d: float) -> float:
    """The smallest pairwise difference strictly greater than ``d``."""
    idx = np.searchsorted(x, y - d, side="left") - 1  # per y_j, the largest x_i < y_j - d
    valid = idx >= 0
    return float((y[valid] - x[idx[valid]]).min())


def kth_difference(x: Floats, y: Floats, k: int) -> float:
    """The k-th smallest (1-based) of the ``len(x) * len(y)`` differences ``y_j - x_i``.

    ``x`` and ``y`` must be sorted. Exact: the answer is one of the differences. Large samples: bisect
    on the value until the bracket holds few differences, then pick among those.
    """
    n, m = x.size, y.size
    total = n * m
    if not 1 <= k <= total:
        raise ValueError(f"k={k} outside 1..{total}")
    if total <= DIRECT_PAIRS:
        diffs = np.subtract.outer(y, x).ravel()
        return float(np.partition(diffs, k - 1)[k - 1])
    # Invariant: count(lo) < k <= count(hi), so the answer lies in (lo, hi].
    lo = float(y[0] - x[-1]) - 1.0
    hi = float(y[-1] - x[0]) + 1.0
    below, upto = 0, total
    enough = max(_ENUMERATE, m)
    while upto - below > enough and hi - lo > _RESOLUTION_MS:
        mid = lo + (hi - lo) / 2
        count = _count_at_most(x, y, mid)
        if count >= k:
            hi, upto = mid, count
        else:
            lo, below = mid, count
    if upto - below > enough:
        # Many equal differences (ties, zeros): the bracket is narrower than any two distinct ones.
        return _smallest_above(x, y, lo)
    inside = _between(x, y, lo, hi)
    want = min(k - below, inside.size) - 1
    return float(np.partition(inside, want)[want])


def _tie_term(values: Floats) -> float:
    """sum(t^3 - t) over groups of tied values (the tie correction of the U variance)."""
    _, counts = np.unique(values, return_counts=True)
    t = counts.astype(np.float64)
    return float((t * t * t - t).sum())


def moses_rank(n: int, m: int, alpha: float, ties: float = 0.0) -> int:
    """The rank C (1-based) whose pairwise differences D_(C), D_(nm+1-C) bound the 1-alpha interval.

    Large-sample form (Hollander & Wolfe, "Nonparametric Statistical Methods", 4.3):
    ``C = floor(nm/2 - z_(alpha/2) * sigma_U)``, with the tie-corrected standard deviation of U.
    At least 1 (the interval is then the whole range of differences).
    """
    total = n + m
    var = n * m / 12.0 * ((total + 1) - ties / (total * (total - 1)))
    z = float(sps.norm.ppf(1 - alpha / 2))
    c = math.floor(n * m / 2.0 - z * math.sqrt(max(var, 0.0)))
    return max(1, c)


def hodges_lehmann(x: Floats, y: Floats, alpha: float) -> tuple[float, float, float]:
    """(shift, low, high): the median of ``y_j - x_i`` and its 1-alpha Moses interval.

    ``x`` and ``y`` must be sorted and non-empty.
    """
    n, m = x.size, y.size
    total = n * m
    if total % 2:
        shift = kth_difference(x, y, (total + 1) // 2)
    else:
        shift = (kth_difference(x, y, total // 2) + kth_difference(x, y, total // 2 + 1)) / 2
    c = moses_rank(n, m, alpha, _tie_term(np.concatenate((x, y))))
    c = min(c, (total + 1) // 2)
    return shift, kth_difference(x, y, c), kth_difference(x, y, total + 1 - c)


def compare(baseline: Floats, candidate: Floats, alpha: float) -> Shift:
    """Compare two samples of one layer's time per request (ms): shift, 1-alpha interval, p-value."""
    x = np.sort(np.asarray(baseline, dtype=np.float64))
    y = np.sort(np.asarray(candidate, dtype=np.float64))
    if x.size == 0 or y.size == 0:
        raise ValueError("both samples need at least one value")
    shift, low, high = hodges_lehmann(x, y, alpha)
    if x[0] == x[-1] == y[0] == y[-1]:
        p = 1.0  # every value equal: U has no variance and nothing can differ
    else:
        p = float(sps.mannwhitneyu(y, x, alternative="two-sided", method="auto").pvalue)
    if math.isnan(p):
        p = 1.0
    return Shift(shift, low, high, p)


def smallest_p(n: int, m: int) -> float:
    """The smallest two-sided Mann-Whitney p-value samples of n and m values can give (complete
    separation, no ties): below it no comparison of these sizes can be significant."""
    return min(1.0, 2.0 / math.comb(n + m, n)) if n and m else 1.0


def adjust(p_values: list[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (compare each with alpha), in the order given."""
    if not p_values:
        return []
    adjusted = sps.false_discovery_control(np.asarray(p_values, dtype=np.float64), method="bh")
    return [float(p) for p in np.atleast_1d(adjusted)]


def failure_rate_p(base_failed: int, base_total: int, cand_failed: int, cand_total: int) -> float:
    """Two-sided p-value of Fisher's exact test: did the share of failed requests change?

    Exact for any count (failures are rare: the normal approximation of a two-proportion test fails
    exactly where it matters, a handful of failures against none).
    """
    table = [[cand_failed, cand_total - cand_failed], [base_failed, base_total - base_failed]]
    return float(sps.fisher_exact(table, alternative="two-sided").pvalue)


def floor_ms(baseline_p50_ms: float, min_shift_ms: float, min_shift_ratio: float) -> float:
    """The smallest shift that counts: the absolute floor, or the relative one of the baseline median."""
    return max(min_shift_ms, min_shift_ratio * abs(baseline_p50_ms))


def verdict(shift_ms: float, adjusted_p: float, alpha: float, floor: float) -> str:
    """``regressed``, ``improved`` or ``unchanged``: significant after correction *and* at least ``floor``."""
    if adjusted_p >= alpha or abs(shift_ms) < floor or shift_ms == 0:
        return "unchanged"
    return "regressed" if shift_ms > 0 else "improved"

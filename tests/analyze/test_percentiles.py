"""Percentiles: exact within the budget, a DDSketch beyond it, within its stated relative error.

The ground truth is the exact percentile of the same values: a sketched percentile must lie within
the sketch's relative accuracy of a value whose rank is the percentile's (DDSketch's guarantee; the
exact figure interpolates between the two neighbouring ranks).
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest

from tests.analyze.truth import Layout, request_trace, to_otlp_lines
from tracekit.analyze.executors import InProcess, LocalPool
from tracekit.analyze.processors.aggregates import (
    EXACT_VALUES_ENV,
    RELATIVE_ACCURACY,
    Sample,
    merge_aggregators,
)
from tracekit.analyze.run import Request, execute, write_json


def _bounds(values: list[float], q: float) -> tuple[float, float]:
    """The values at the two ranks around the q-th percentile, widened by the relative accuracy."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = ordered[int(pos)], ordered[min(int(pos) + 1, len(ordered) - 1)]
    return lo * (1 - RELATIVE_ACCURACY) - 1e-9, hi * (1 + RELATIVE_ACCURACY) + 1e-9


def _sample(ns_values: list[int]) -> Sample:
    sample = Sample()
    for ns in ns_values:
        sample.add_ns(ns)
    return sample


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sketch_within_its_relative_accuracy(seed: int) -> None:
    rng = random.Random(seed)
    ns = [int(rng.lognormvariate(15, 1.2)) + 1 for _ in range(20_000)]
    zeros = 3_000  # a layer's traces without time in it
    values = [v / 1e6 for v in ns] + [0.0] * zeros
    exact = _sample(ns).stats(zeros)
    sample = _sample(ns)
    sample.to_sketch()
    sketched = sample.stats(zeros)
    assert sketched["mean_ms"] == exact["mean_ms"]  # means come from the exact sum
    for key, q in (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)):
        lo, hi = _bounds(values, q)
        assert lo <= sketched[key] <= hi, (key, sketched[key], lo, hi)


def test_merged_sketches_do_not_depend_on_the_split() -> None:
    rng = random.Random(7)
    ns = [rng.randrange(1, 10**9) for _ in range(5_000)]
    results = set()
    for cut in (1, 2, 5, 13):
        rng.shuffle(ns)
        parts = [_sample(ns[i::cut]) for i in range(cut)]
        for part in parts[::2]:
            part.to_sketch()  # some parts arrive sketched, some exact
        total = Sample()
        for part in parts:
            total.merge(part)
        results.add(json.dumps(total.stats()))
    assert len(results) == 1


@pytest.fixture(scope="module")
def trace_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = random.Random(11)
    traces = [
        request_trace(
            n, Layout(app=(rng.randrange(1000, 90_000), 1000)), failure="db" if n % 13 == 0 else None
        )
        for n in range(1, 121)
    ]
    path = tmp_path_factory.mktemp("percentiles") / "t.jsonl"
    path.write_text(to_otlp_lines([s for b in traces for s in b.spans], per_line=5))
    return path


def _run(path: Path, tmp: Path, executor: object, partitions: int) -> dict:
    storage = tmp / f"s{len(list(tmp.iterdir()))}"
    storage.mkdir()
    out = io.BytesIO()
    write_json(out, execute(Request([str(path)], partitions=partitions), executor, str(storage)))
    return json.loads(out.getvalue())


def test_past_the_budget_the_report_says_sketch_and_stays_within_it(
    trace_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exact = _run(trace_file, tmp_path, InProcess(), 1)
    assert exact["summary"]["percentiles"]["method"] == "exact"
    monkeypatch.setenv(EXACT_VALUES_ENV, "200")  # 120 traces hold about 1,000 values
    sketched = _run(trace_file, tmp_path, InProcess(), 1)
    meta = sketched["summary"]["percentiles"]
    assert meta == {"method": "ddsketch", "relative_accuracy": RELATIVE_ACCURACY, "exact_budget": 200}
    durations = [t["duration_ms"] for t in exact["traces"]]
    for key, q in (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)):
        lo, hi = _bounds(durations, q)
        assert lo <= sketched["summary"]["duration"][key] <= hi
    assert sketched["summary"]["duration"]["mean_ms"] == exact["summary"]["duration"]["mean_ms"]
    assert sketched["traces"] == exact["traces"]  # only the summary's percentiles change
    # The same sketched report from any split of the work (partitions sketch on their own or not).
    pool = LocalPool(2)
    try:
        for partitions in (2, 7):
            assert _run(trace_file, tmp_path, pool, partitions) == sketched
    finally:
        pool.close()


def test_merge_of_nothing_is_exact() -> None:
    assert merge_aggregators([]).summary()["percentiles"]["method"] == "exact"

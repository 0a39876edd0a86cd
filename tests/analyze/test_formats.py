"""The same truth through every file format: OTLP JSON (document and JSONL), Jaeger JSON, Zipkin v2."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from tests.analyze.conftest import run_checked
from tests.analyze.test_truth import assert_truth
from tests.analyze.truth import Built, request_trace, to_jaeger, to_otlp, to_otlp_lines, to_zipkin
from tracekit.analyze.api import analyze_paths
from tracekit.analyze.readers import read_traces

CASES = {
    "plain": lambda: request_trace(21),
    "fanout": lambda: request_trace(22, fanout=3),
    "skew": lambda: request_trace(23, skew_node="node-2", skew_us=-150_000),
    "zero": lambda: request_trace(24, zero_length=True),
    "app-failure": lambda: request_trace(25, failure="app"),
    "db-failure": lambda: request_trace(26, failure="db"),
    "ingress-404": lambda: request_trace(27, failure="ingress"),
    "service-503": lambda: request_trace(28, failure="service"),
    "edge": lambda: request_trace(29, failure="edge"),
}


def write(fmt: str, built: list[Built], tmp_path: Path) -> Path:
    spans = [s for b in built for s in b.spans]
    path = tmp_path / f"traces.{fmt}.json"
    if fmt == "otlp":
        path.write_text(json.dumps(to_otlp(spans)))
    elif fmt == "otlp-lines":
        # Interleave the traces' spans across lines, as a collector writes them.
        mixed = [s for group in zip(*(b.spans for b in built), strict=False) for s in group]
        mixed += [s for b in built for s in b.spans[min(len(x.spans) for x in built) :]]
        path.write_text(to_otlp_lines(mixed, per_line=4))
    elif fmt == "jaeger":
        path.write_text(json.dumps(to_jaeger([b.spans for b in built])))
    elif fmt == "zipkin":
        path.write_text(json.dumps(to_zipkin(spans)))
    elif fmt == "otlp-gz":
        path = tmp_path / "traces.json.gz"
        path.write_bytes(gzip.compress(json.dumps(to_otlp(spans)).encode()))
    return path


@pytest.mark.parametrize("fmt", ["otlp", "otlp-lines", "otlp-gz", "jaeger", "zipkin"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip_keeps_the_truth(fmt: str, case: str, tmp_path: Path) -> None:
    built = CASES[case]()
    path = write(fmt, [built], tmp_path)
    traces = list(read_traces(path, on_warning=lambda w: None))
    assert [t.trace_id for t in traces] == [built.trace_id]
    tree = run_checked(traces[0])
    assert_truth(built, tree.attribution)
    assert tree.diagnosis["failed_layer"] == built.failed_layer


def test_jaeger_keeps_follows_from_off_the_path(tmp_path: Path) -> None:
    built = request_trace(30, follows_from=True)
    path = write("jaeger", [built], tmp_path)
    (trace,) = read_traces(path)
    assert_truth(built, run_checked(trace).attribution)


@pytest.mark.parametrize("fmt", ["otlp-lines", "jaeger", "zipkin"])
def test_many_traces_in_one_file(fmt: str, tmp_path: Path) -> None:
    built = [CASES[c]() for c in sorted(CASES)]
    path = write(fmt, built, tmp_path)
    report = analyze_paths([path])
    by_id = {t["trace_id"]: t for t in report["traces"]}
    assert report["summary"]["traces"] == len(built)
    assert report["summary"]["error_traces"] == sum(b.failed_layer is not None for b in built)
    for b in built:
        t = by_id[b.trace_id]
        assert abs(t["duration_ms"] - b.duration / 1e6) < 1e-3
        assert abs(sum(t["layers"].values()) - t["duration_ms"]) < 1e-6
        for layer, ns in b.truth.items():
            assert abs(t["layers"][layer] - ns / 1e6) <= 1e-3
        assert t["diagnosis"]["failed_layer"] == b.failed_layer

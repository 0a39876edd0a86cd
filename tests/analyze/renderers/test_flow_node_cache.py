"""FlowBuilder remembers each span's node by the identity of its attribute and resource dicts.

Readers hand the same dict to every span with equal attributes (one resource dict per OTLP
``resourceSpans``), so the diagram skips most attribute lookups. The diagram must not depend on that
sharing: spans that each own a copy of their dicts, and a cache forgetting its entries all the time,
give the same flow.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bench.tracegen import write_otlp_jsonl
from tracekit.analyze.api import analyze_paths
from tracekit.analyze.renderers import html
from tracekit.analyze.renderers.html import build_flow


@pytest.fixture(scope="module")
def replica_traces(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """300 Collector-style traces over 8 shop replicas (some fold into one box), spans included."""
    path = tmp_path_factory.mktemp("flowcache") / "traces.jsonl"
    write_otlp_jsonl(path, 300, 8, seed=5)
    return analyze_paths([path], include_spans=True, on_warning=lambda _: None)["traces"]


def _shared_dicts(traces: list[dict[str, Any]]) -> int:
    ids = {id(s["resource"]) for t in traces for s in t.get("spans") or ()}
    return sum(len(t.get("spans") or ()) for t in traces) - len(ids)


def test_unshared_copies_give_the_same_flow(replica_traces: list[dict[str, Any]]) -> None:
    assert _shared_dicts(replica_traces) > 0, "the reader shares resource dicts between spans"
    unshared = copy.deepcopy(replica_traces)  # every span gets dicts of its own
    for trace in unshared:
        for span in trace["spans"]:
            span["attributes"] = dict(span["attributes"])
            span["resource"] = dict(span["resource"])
    assert _shared_dicts(unshared) == 0
    flow = build_flow(replica_traces)
    assert flow["folded_pods"]
    assert build_flow(unshared) == flow


def test_a_cache_that_keeps_forgetting_gives_the_same_flow(
    replica_traces: list[dict[str, Any]], shop_report: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    traces = replica_traces + shop_report["traces"]
    expected = build_flow(traces)
    monkeypatch.setattr(html, "_NODE_CACHE_SIZE", 1)
    assert build_flow(traces) == expected

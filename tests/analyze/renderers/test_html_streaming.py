"""The CLI's HTML path streams: the page equals the all-in-memory one, and no span outlives its fold.

``tracekit analyze FILE -o x.html`` folds each trace report into ``ViewBuilder`` and reads the input a
second time for the sampled traces only; ``render_html(report)`` gets every trace at once. Both must
give the same page, byte for byte (the ``generated_at`` stamp aside).
"""

from __future__ import annotations

import gc
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bench.tracegen import write_otlp_jsonl
from tests.analyze.renderers.shopdata import OTLP_FILE, _any
from tracekit.analyze import api
from tracekit.analyze.api import Analysis, analyze_paths
from tracekit.analyze.readers import read_traces
from tracekit.analyze.renderers.html import MAX_SAMPLES, FlowBuilder, ViewBuilder, build_flow, render_html
from tracekit.cli import main

_STAMP = re.compile(r'"generated_at":"[^"]*"')


def _page(html: str) -> str:
    return _STAMP.sub('"generated_at":"-"', html)


def _cli_page(tmp_path: Path, *args: str, stdin: bytes | None = None) -> str:
    out = tmp_path / "cli.html"
    result = CliRunner().invoke(main, ["analyze", *args, "-o", str(out)], input=stdin)
    assert result.exit_code == 0, result.output
    return _page(out.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def many_traces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 Collector-style traces: 3 routes, 8 shop replicas (folded), 30 failed (more than fit)."""
    path = tmp_path_factory.mktemp("streaming") / "many.jsonl"
    write_otlp_jsonl(path, 3000, 8, seed=3)
    return path


def test_cli_page_equals_in_memory_page(tmp_path: Path, many_traces: Path) -> None:
    paths = [str(many_traces), str(OTLP_FILE)]  # the shop file adds two other failure kinds
    report = analyze_paths(paths, include_spans=True, on_warning=lambda _: None)
    assert report["summary"]["traces"] > MAX_SAMPLES
    assert report["summary"]["error_traces"] > 25
    assert len(report["summary"]["routes"]) >= 3
    expected = _page(render_html(report))
    assert _cli_page(tmp_path, *paths) == expected
    data = json.loads(re.search(r'id="tracekit-data">(.*?)</script>', expected, re.S).group(1))  # type: ignore[union-attr]
    assert len(data["samples"]) == MAX_SAMPLES
    assert data["flow"]["folded_pods"]  # the replica folding was exercised
    assert (
        len(data["failures"]) >= 2
    )  # database errors (the generated traces and the shop file), no endpoints


def test_stdin_is_spooled_and_gives_the_same_page(tmp_path: Path) -> None:
    expected = _page(render_html(analyze_paths([OTLP_FILE], include_spans=True)))
    assert _cli_page(tmp_path, "-", stdin=OTLP_FILE.read_bytes()) == expected


def test_same_file_twice_gives_the_same_page(tmp_path: Path) -> None:
    # Every failed trace comes twice with equal reports: a copy must not take a second "failed" slot.
    paths = [str(OTLP_FILE)] * 2
    expected = _page(render_html(analyze_paths(paths, include_spans=True, on_warning=lambda _: None)))
    assert _cli_page(tmp_path, *paths) == expected


def test_second_read_analyses_only_the_sampled_traces(
    tmp_path: Path, many_traces: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read 1 analyses every trace once; read 2 at most the candidates for the page's samples."""
    calls = {"spans": 0, "analysed": 0}
    analyse = api.Analysis.analyse

    def counting(self: Analysis, trace: Any) -> dict[str, Any] | None:
        calls["analysed"] += 1
        calls["spans"] += len(trace.spans)
        return analyse(self, trace)

    monkeypatch.setattr(api.Analysis, "analyse", counting)
    _cli_page(tmp_path, str(many_traces))
    assert 3000 < calls["analysed"] <= 3000 + 2 * MAX_SAMPLES


def test_view_builder_holds_no_spans_and_does_not_grow_in_objects(many_traces: Path) -> None:
    """What stays after folding N traces: arrays (one object each) and bounded tables, no span dict."""

    def reachable(builder: ViewBuilder) -> list[Any]:
        seen: dict[int, Any] = {}
        todo = [builder]
        while todo:
            obj = todo.pop()
            if id(obj) in seen or isinstance(obj, type):
                continue
            seen[id(obj)] = obj
            todo.extend(gc.get_referents(obj))
        return list(seen.values())

    def fold(n: int) -> list[Any]:
        builder = ViewBuilder()
        analysis = Analysis(include_spans=True)
        for i, trace in enumerate(read_traces(many_traces, on_warning=lambda _: None)):
            if i == n:
                break
            report = analysis.analyse(trace)
            assert report is not None and report["spans"]
            builder.add(report)
        return reachable(builder)

    small, large = fold(300), fold(3000)
    for obj in large:
        assert not (isinstance(obj, dict) and "span_id" in obj), "a span dict outlived its trace"
    # 10x the traces, the same number of objects give or take a few table entries (warnings, groups).
    assert len(large) < len(small) + 200, (len(small), len(large))


def _otlp_replicas() -> dict[str, Any]:
    """Six replicas of one Deployment (three fold into one box); a folded replica calls another."""
    resource_spans = []
    pods = [f"web-5d8f7c6b9-{c * 5}" for c in "abcdef"]

    def span(trace: int, sid: str, parent: str | None, name: str, kind: int, start: int, end: int) -> dict:
        out = {
            "traceId": f"{trace:032x}",
            "spanId": f"{trace:08x}{sid:0>8}",
            "name": name,
            "kind": kind,
            "startTimeUnixNano": str(1_763_800_000_000_000_000 + trace * 10**9 + start * 10**6),
            "endTimeUnixNano": str(1_763_800_000_000_000_000 + trace * 10**9 + end * 10**6),
            "attributes": [{"key": "http.route", "value": _any("/a")}],
        }
        if parent:
            out["parentSpanId"] = f"{trace:08x}{parent:0>8}"
        return out

    def resource(pod: str) -> dict[str, Any]:
        attrs = {"service.name": "web", "k8s.pod.name": pod, "k8s.container.name": "app"}
        attrs["k8s.deployment.name"] = "web"
        attrs["k8s.namespace.name"] = "shop"
        return {"attributes": [{"key": k, "value": _any(v)} for k, v in attrs.items()]}

    trace = 0
    for i, pod in enumerate(pods):
        for _ in range(6 - i):  # busier replicas first: the last three fold
            trace += 1
            resource_spans.append(
                {
                    "resource": resource(pod),
                    "scopeSpans": [{"spans": [span(trace, "1", None, "GET /a", 2, 0, 10)]}],
                }
            )
    # A request on the folded replica 4 that calls the folded replica 5 (same service and container).
    trace += 1
    resource_spans.append(
        {
            "resource": resource(pods[4]),
            "scopeSpans": [
                {
                    "spans": [
                        span(trace, "1", None, "GET /a", 2, 0, 20),
                        span(trace, "2", "1", "GET /b", 3, 2, 18),
                    ]
                }
            ],
        }
    )
    resource_spans.append(
        {
            "resource": resource(pods[5]),
            "scopeSpans": [{"spans": [span(trace, "3", "2", "GET /b", 2, 4, 16)]}],
        }
    )
    return {"resourceSpans": resource_spans}


def test_replica_calling_a_replica_in_the_same_box_redoes_the_flow(tmp_path: Path) -> None:
    path = tmp_path / "replicas.json"
    path.write_text(json.dumps(_otlp_replicas()), encoding="utf-8")
    report = analyze_paths([path], include_spans=True, on_warning=lambda _: None)
    streamed = FlowBuilder()
    for trace in report["traces"]:
        streamed.add(trace)
    assert streamed.fold(), "three replicas fold into one box"
    assert streamed.ambiguous()  # the two raw nodes calling each other are one box once folded
    flow = build_flow(report["traces"])
    folded = [n for n in flow["nodes"] if "more pods" in str(n.get("pod"))]
    assert len(folded) == 1
    # Inside one box the call is not an edge between boxes: no edge from the box to itself.
    assert not [e for e in flow["edges"] if e["from"] == e["to"]]
    assert _cli_page(tmp_path, str(path)) == _page(render_html(report))

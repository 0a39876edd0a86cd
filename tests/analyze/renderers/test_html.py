"""The HTML report as text: self-contained, safely embedded data, bounded size, derived aggregates."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.analyze.renderers.shopdata import HOSTILE_SQL, handmade_report, report_from_traces
from tracekit.analyze.renderers.html import MAX_SAMPLES, build_view, embed_json, percentile, render_html

_DATA = re.compile(r'<script type="application/json" id="tracekit-data">(.*?)</script>', re.S)


def embedded(html: str) -> dict[str, Any]:
    match = _DATA.search(html)
    assert match, "no data block"
    return json.loads(match.group(1))


def test_page_is_self_contained(shop_report: dict[str, Any]) -> None:
    html = render_html(shop_report)
    # No external resource: nothing in src/href/url() points at http(s), no <link> or <script src>.
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert not re.search(r"""url\(\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert not re.search(r"<link\b", html, re.I)
    assert not re.search(r"<script\b[^>]*\bsrc=", html, re.I)
    assert "default-src 'none'" in html  # and the page forbids fetching anything anyway
    # Outside the embedded data (where span attributes may hold URLs as text), no URL at all.
    assert not re.search(r"https?://", _DATA.sub("", html))


def test_embedded_json_round_trips_hostile_strings() -> None:
    hostile = ["</script>", "<!--", "<script>", "]]>", "\u2028\u2029", "&amp;", "</SCRIPT >", "\x00", "é€😀"]
    value = {"attrs": {f"k{i}": v for i, v in enumerate(hostile)}, "list": hostile}
    text = embed_json(value)
    assert "<" not in text and ">" not in text and "&" not in text
    assert "\u2028" not in text and "\u2029" not in text  # raw line separators end JS strings
    assert json.loads(text) == value


def test_attribute_with_script_end_cannot_break_out(shop_report: dict[str, Any]) -> None:
    html = render_html(shop_report)
    # Only the page's own two <script> elements close; the hostile SQL stays inside the JSON.
    assert html.count("</script>") == 2
    assert HOSTILE_SQL not in html
    assert "\\u003c/script\\u003e" in html
    data = embedded(html)
    queries = [s["attributes"].get("db.query.text") for t in data["samples"] for s in t["spans"]]
    assert HOSTILE_SQL in queries


def test_title_is_escaped() -> None:
    html = render_html(handmade_report(), title="<b>shop</b> & co")
    assert "<title>&lt;b&gt;shop&lt;/b&gt; &amp; co</title>" in html


def test_view_keeps_the_contract_numbers(shop_report: dict[str, Any]) -> None:
    view = build_view(shop_report)
    assert view["summary"]["traces"] == shop_report["summary"]["traces"]
    assert view["summary"]["error_traces"] == shop_report["summary"]["error_traces"]
    assert view["summary"]["layers"] == shop_report["summary"]["layers"]
    assert len(view["samples"]) == len(shop_report["traces"])  # small input: every trace gets a waterfall


def test_flow_nodes_and_edges_from_spans(shop_report: dict[str, Any]) -> None:
    flow = build_view(shop_report)["flow"]
    nodes = {n["id"]: n for n in flow["nodes"]}
    labels = {n["label"]: n for n in flow["nodes"]}
    assert labels["loadgen"]["layer"] == "client" and labels["loadgen"]["count"] == 7
    assert labels["ingress"]["layer"] == "ingress" and labels["ingress"]["errors"] == 2
    service = labels["web-service"]
    assert service["kind"] == "k8s-service" and service["count"] == 7
    # The Service node's latency is the hop time the pods did not cover: 4 ms at scale 1 (p50).
    assert service["p50_ms"] == 4.8
    apps = [n for n in flow["nodes"] if n["layer"] == "app"]
    assert sorted(n["pod"] for n in apps) == ["shop-7d9f8c6b5-abcde", "shop-7d9f8c6b5-fghij"]
    dbs = [n for n in flow["nodes"] if n["kind"] == "database"]
    assert sorted(n["pod"] for n in dbs) == sorted(n["pod"] for n in apps)
    assert sum(n["errors"] for n in dbs) == 1
    edges = {
        (nodes[e["from"]]["label"], nodes[e["to"]]["label"], nodes[e["to"]].get("pod")): e
        for e in flow["edges"]
    }
    client_edge = edges[("loadgen", "ingress", None)]
    assert client_edge["count"] == 7 and client_edge["errors"] == 2
    assert client_edge["net_p50_ms"] == 4.0  # the edge layer: 2 ms each side at scale 1
    assert edges[("ingress", "web-service", None)]["count"] == 7
    fan_out = [e for (a, b, _), e in edges.items() if a == "web-service"]
    assert sorted(e["count"] for e in fan_out) == [3, 3]


def test_failures_grouped(shop_report: dict[str, Any]) -> None:
    failures = build_view(shop_report)["failures"]
    assert {(f["layer"], f["count"]) for f in failures} == {("db", 1), ("service", 1)}
    for f in failures:
        assert len(f["examples"]) == 1


def test_sample_caps_waterfalls_and_picks_slowest_failed_typical() -> None:
    base = handmade_report()["traces"]
    traces = []
    for i in range(3000):
        t = dict(base[i % len(base)])
        t["trace_id"] = f"{i + 1:032x}"
        t["duration_ms"] = float(i % 1000) + (0.5 if t["status"] == "error" else 0.0)
        traces.append(t)
    view = build_view(report_from_traces(traces))
    samples = view["samples"]
    assert len(samples) <= MAX_SAMPLES
    slowest = max(t["duration_ms"] for t in traces)
    assert any(s["duration_ms"] == slowest and "slowest" in s["why"] for s in samples)
    assert {s["diagnosis"]["failed_layer"] for s in samples if "failed" in s["why"]} == {"db", "service"}
    assert any("typical" in s["why"] for s in samples)
    # The aggregates still count every trace.
    assert sum(n["count"] for n in view["flow"]["nodes"] if n["label"] == "loadgen") == 3000
    assert sum(b["count"] for b in view["buckets"]) == 3000
    assert sum(view["histogram"]["ok"]) + sum(view["histogram"]["error"]) == 3000


def test_percentile_interpolates() -> None:
    assert percentile([], 50) is None
    assert percentile([5.0], 99) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([0.0, 10.0], 95) == 9.5

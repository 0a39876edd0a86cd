"""Attribution and diagnosis against injected ground truth (tests/analyze/truth.py)."""

from __future__ import annotations

import pytest

from tests.analyze.conftest import run_checked
from tests.analyze.truth import US, Built, Layout, big_trace, request_trace

TOLERANCE_NS = 1_000  # 1 µs


def assert_truth(built: Built, attribution: dict[str, int]) -> None:
    got = {k: v for k, v in attribution.items() if v}
    assert set(got) == set(built.truth), (got, built.truth)
    for layer, ns in built.truth.items():
        assert abs(got[layer] - ns) <= TOLERANCE_NS, (layer, got[layer], ns)


def check(built: Built):
    tree = run_checked(built.trace())
    assert tree.root is not None
    assert sum(tree.attribution.values()) == tree.root.duration
    assert_truth(built, tree.attribution)
    assert tree.diagnosis["failed_layer"] == built.failed_layer, tree.diagnosis
    return tree


def test_plain_request_attribution_matches_the_layout() -> None:
    built = request_trace(1)
    tree = check(built)
    assert tree.root.duration == built.duration
    assert [h["layer"] for h in tree.hops[:4]] == ["edge", "ingress", "service", "app"]


def test_client_root_with_own_time() -> None:
    check(request_trace(2, Layout(client_self=(700, 300))))


@pytest.mark.parametrize("n", [2, 3, 6])
def test_parallel_fan_out_follows_the_last_finishing_call(n: int) -> None:
    tree = check(request_trace(3, fanout=n))
    partners = [node for node in tree.nodes if node.span.name.startswith("GET partner")]
    assert [p.critical for p in partners] == [i == 1 for i in range(n)]


def test_follows_from_children_stay_off_the_path() -> None:
    tree = check(request_trace(4, follows_from=True))
    audit = next(n for n in tree.nodes if n.span.name == "audit log")
    assert not audit.critical and audit.self_ns == 0


@pytest.mark.parametrize("node", ["node-1", "node-2"])
@pytest.mark.parametrize("skew_us", [150_000, -150_000, 7_000, -3])
def test_clock_skew_on_one_node_is_undone(node: str, skew_us: int) -> None:
    tree = check(request_trace(5, skew_node=node, skew_us=skew_us))
    for n in tree.nodes:
        p = n.parent
        if p is not None and n.span.kind == 2 and p.span.kind == 3:
            assert p.start <= n.start and n.end <= p.end
    if abs(skew_us) >= 1000:
        assert any("clock skew" in w for w in tree.warnings)


def test_missing_sidecar_span_moves_its_time_to_the_sidecar_hop() -> None:
    built = request_trace(6, missing=frozenset({"sidecar"}))
    built.truth["sidecar"] += built.truth.pop("db")
    tree = check(built)
    assert any("orphan" in w for w in tree.warnings)


def test_missing_root_span_analyses_the_ingress_span() -> None:
    tree = check(request_trace(7, missing=frozenset({"client"})))
    assert tree.root.span.service == "ingress"
    assert any("orphan" in w for w in tree.warnings)


def test_orphans_and_duplicates_are_kept_out_and_reported() -> None:
    import msgspec

    built = request_trace(8)
    stray = msgspec.structs.replace(built.spans[3], span_id="00000000deadbeef", parent_id="00000000feedface")
    dup = msgspec.structs.replace(built.spans[-1], start_ns=built.spans[-1].start_ns - 10**9)
    built.spans = [*built.spans, stray, dup]
    tree = check(built)
    assert any("duplicate" in w for w in tree.warnings)
    assert any("orphan" in w for w in tree.warnings)
    assert len(tree.roots) == 2


def test_zero_length_spans() -> None:
    check(request_trace(9, zero_length=True))


def test_ten_thousand_span_trace() -> None:
    built = big_trace()
    assert len(built.spans) >= 10_000
    check(built)


def test_thousand_level_deep_trace() -> None:
    built = request_trace(10, deep=1000)
    tree = check(built)
    assert max(n.depth for n in tree.nodes) > 1000


@pytest.mark.parametrize("failure", ["edge", "ingress", "service", "envoy", "app", "sidecar", "db"])
def test_diagnosis_names_the_injected_failure(failure: str) -> None:
    tree = check(request_trace(11, failure=failure))
    diag = tree.diagnosis
    assert diag["span_id"] in tree.by_id
    assert diag["reason"]


def test_diagnosis_reasons_are_plain_words() -> None:
    reasons = {
        f: run_checked(request_trace(12, failure=f).trace()).diagnosis["reason"]
        for f in ["edge", "ingress", "service", "envoy", "app", "db"]
    }
    assert "never reached the cluster" in reasons["edge"]
    assert "no ingress rule matched" in reasons["ingress"]
    assert "no ready endpoints" in reasons["service"]
    assert "no healthy upstream" in reasons["envoy"]
    assert "ZeroDivisionError" in reasons["app"]
    assert "database is locked" in reasons["db"]


def test_ok_request_has_no_diagnosis() -> None:
    tree = check(request_trace(13))
    assert tree.diagnosis == {"failed_layer": None, "reason": "", "span_id": None, "outcome": "ok"}


def test_parent_cycle_is_broken_with_a_warning() -> None:
    import msgspec

    built = request_trace(14)
    spans = list(built.spans)
    # Make the app SERVER span's parent its own descendant (the sidecar call): a cycle app -> call -> app.
    app = next(s for s in spans if s.name == "GET /api/items" and s.service == "shop")
    call = next(s for s in spans if s.service == "shop" and s.kind == 3)
    spans[spans.index(app)] = msgspec.structs.replace(app, parent_id=call.span_id)
    built.spans = spans
    tree = run_checked(built.trace())
    assert any("cycle" in w for w in tree.warnings)
    assert sum(tree.attribution.values()) == tree.root.duration
    assert len(tree.nodes) == len(spans)


def test_zero_duration_root() -> None:
    from tracekit.analyze.model import Span, SpanKind, Trace

    span = Span("0" * 31 + "1", "0" * 15 + "1", None, "ping", SpanKind.SERVER, 5 * US, 5 * US)
    tree = run_checked(Trace(span.trace_id, [span]))
    assert tree.attribution == {"app": 0}

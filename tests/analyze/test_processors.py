"""Every processor: same signature, returns the tree, copes with odd trees ."""

from __future__ import annotations

import pytest

from tests.analyze.conftest import run_checked
from tests.analyze.truth import request_trace
from tracekit.analyze.model import RefType, Span, SpanKind, Trace
from tracekit.analyze.processors import Options, default_processors
from tracekit.analyze.tree import build_span_tree

OPTIONS = Options()
PROCESSORS = default_processors(OPTIONS)


def s(
    sid: str, parent: str | None, start: int, end: int, kind=SpanKind.INTERNAL, service="svc", **kw
) -> Span:
    return Span(
        "f" * 32,
        sid.rjust(16, "0"),
        parent.rjust(16, "0") if parent else None,
        f"op{sid}",
        kind,
        start,
        end,
        service=service,
        resource={"service.name": service},
        **kw,
    )


@pytest.mark.parametrize("processor", PROCESSORS, ids=lambda p: p.__name__)
def test_processor_returns_the_tree_and_passes_empty_ones(processor) -> None:
    empty = build_span_tree(Trace("f" * 32, []))
    assert processor(empty, OPTIONS) is empty
    tree = build_span_tree(request_trace(1).trace())
    for step in PROCESSORS[: PROCESSORS.index(processor)]:
        tree = step(tree, OPTIONS)
    assert processor(tree, OPTIONS) is tree
    tree.self_check()


def test_no_skew_option_drops_the_step() -> None:
    names = [p.__name__ for p in default_processors(Options(adjust_skew=False))]
    assert "adjust_clock_skew" not in names and "critical_path" in names


def test_critical_path_follows_the_last_finishing_child() -> None:
    # root [0,100]: a [10,50], b [20,80] (parallel), c [85,90]; b ends last before c's start.
    spans = [s("1", None, 0, 100), s("2", "1", 10, 50), s("3", "1", 20, 80), s("4", "1", 85, 90)]
    tree = run_checked(Trace("f" * 32, spans))
    path = [(n.span.span_id[-1], a, b) for n, a, b in tree.segments]
    assert path == [("1", 0, 20), ("3", 20, 80), ("1", 80, 85), ("4", 85, 90), ("1", 90, 100)]
    assert not tree.by_id["0" * 15 + "2"].critical


def test_overflowing_and_outside_children_are_clipped() -> None:
    spans = [s("1", None, 0, 100), s("2", "1", 50, 150), s("3", "1", 120, 130), s("4", "1", -20, 10)]
    tree = run_checked(Trace("f" * 32, spans))
    assert tree.by_id["0" * 15 + "2"].self_ns == 50
    assert tree.by_id["0" * 15 + "3"].self_ns == 0
    assert tree.by_id["0" * 15 + "4"].self_ns == 10
    assert sum(tree.attribution.values()) == 100


def test_follows_from_child_is_off_the_path() -> None:
    spans = [s("1", None, 0, 100), s("2", "1", 10, 90, ref_type=RefType.FOLLOWS_FROM)]
    tree = run_checked(Trace("f" * 32, spans))
    assert tree.by_id["0" * 15 + "1"].self_ns == 100


def test_skew_shift_never_truncates_a_longer_server_span() -> None:
    spans = [s("1", None, 0, 100, SpanKind.CLIENT, "a"), s("2", "1", 500, 700, SpanKind.SERVER, "b")]
    tree = run_checked(Trace("f" * 32, spans))
    server = tree.by_id["0" * 15 + "2"]
    assert (server.start, server.end) == (0, 200)
    assert server.span.start_ns == 500  # the span itself is untouched
    assert any("clock skew" in w and "-500 ns" in w for w in tree.warnings)


def test_skew_leaves_same_host_and_async_pairs_alone() -> None:
    spans = [
        s("1", None, 0, 100, SpanKind.CLIENT, "a"),
        s("2", "1", 150, 160, SpanKind.SERVER, "a"),
        s("3", None, 0, 10, SpanKind.PRODUCER, "b"),
        s("4", "3", 50, 60, SpanKind.CONSUMER, "c"),
    ]
    tree = run_checked(Trace("f" * 32, spans))
    assert all(n.shift_ns == 0 for n in tree.nodes)


def _hosted(sid: str, parent: str | None, start: int, end: int, kind: SpanKind, service: str, **res) -> Span:
    span = s(sid, parent, start, end, kind, service)
    return Span(**{f: getattr(span, f) for f in span.__struct_fields__} | {"resource": res})


@pytest.mark.parametrize(
    ("client_res", "server_res", "shifted"),
    [
        ({"k8s.node.name": "n1"}, {"k8s.node.name": "n1"}, False),  # one node, one clock
        ({"k8s.node.name": "n1"}, {"k8s.node.name": "n2"}, True),
        ({"host.name": "m", "k8s.node.name": "n1"}, {"host.name": "m"}, False),  # like with like
        ({}, {"k8s.node.name": "n1"}, True),  # a client without host info: cannot share the clock
        ({}, {}, True),  # no host info anywhere: the services stand in (a, b)
    ],
)
def test_skew_only_between_hosts(client_res: dict, server_res: dict, shifted: bool) -> None:
    # The server answers after its client gave up waiting: real on one clock, skew across two.
    spans = [
        _hosted("1", None, 0, 100, SpanKind.CLIENT, "a", **client_res),
        _hosted("2", "1", 10, 120, SpanKind.SERVER, "b", **server_res),
    ]
    tree = run_checked(Trace("f" * 32, spans))
    assert (tree.by_id["0" * 15 + "2"].shift_ns != 0) is shifted
    assert sum(tree.attribution.values()) == 100


def test_k8s_context_of_a_hop_includes_its_own_span_attributes() -> None:
    # Two spans of one process (one resource dict): only the child names a namespace in its own
    # attributes. The per-resource cache must not hand the child's context to the root, or back.
    resource = {"service.name": "svc", "k8s.pod.name": "shop-1"}
    root = Span("f" * 32, "1".rjust(16, "0"), None, "root", SpanKind.SERVER, 0, 100, resource=resource)
    child = Span(
        "f" * 32,
        "2".rjust(16, "0"),
        root.span_id,
        "child",
        SpanKind.INTERNAL,
        10,
        90,
        resource=resource,
        attributes={"k8s.namespace.name": "shop"},
    )
    tree = run_checked(Trace("f" * 32, [root, child]))
    contexts = {hop.span_id[-1]: hop.k8s for hop in tree.hops}
    assert contexts == {"1": {"pod": "shop-1"}, "2": {"namespace": "shop", "pod": "shop-1"}}

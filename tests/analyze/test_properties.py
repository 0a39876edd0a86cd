"""Property tests (hypothesis) over random span trees: exact sums, no negatives, determinism, formats."""

from __future__ import annotations

import io
import itertools
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.analyze.conftest import run_checked
from tests.analyze.truth import (
    APP_RES,
    CLIENT_RES,
    INGRESS_RES,
    SIDECAR_RES,
    US,
    to_jaeger,
    to_otlp,
    to_zipkin,
)
from tracekit.analyze.model import RefType, Span, SpanKind, StatusCode, Trace
from tracekit.analyze.readers import read_traces

RESOURCES = [CLIENT_RES, INGRESS_RES, APP_RES, SIDECAR_RES, {"service.name": "partner"}]
KINDS = [SpanKind.INTERNAL, SpanKind.SERVER, SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER]
ATTRS = [
    {},
    {"db.system": "sqlite"},
    {"server.address": "127.0.0.1"},
    {"http.response.status_code": 503},
    {"tracekit.component": "ingress"},
    {"http.route": "/x", "http.request.method": "GET"},
]


@st.composite
def span_trees(draw, *, follows: bool = True, max_spans: int = 25) -> Trace:
    """Random trees: parents come first, times anywhere around the parent (skew, overflow, zero length)."""
    n = draw(st.integers(1, max_spans))
    tid = f"{draw(st.integers(1, 2**64)):032x}"
    spans: list[Span] = []
    for i in range(n):
        parent = draw(st.none() | st.integers(0, i - 1)) if i else None
        if parent is not None and draw(st.integers(0, 9)) == 0:
            parent = None  # several roots
        base = spans[parent].start_ns if parent is not None else 1_700_000_000_000_000_000
        start = base + draw(st.integers(-200_000, 2_000_000)) * US // 1000 * 1000
        duration = draw(st.sampled_from([0, 1, 7, 150, 1000, 50_000, 2_000_000])) * US
        res = draw(st.sampled_from(RESOURCES))
        spans.append(
            Span(
                trace_id=tid,
                span_id=f"{i + 1:016x}",
                parent_id=f"{parent + 1:016x}" if parent is not None else None,
                name=f"op{draw(st.integers(0, 3))}",
                kind=draw(st.sampled_from(KINDS)),
                start_ns=start,
                end_ns=start + duration,
                service=res["service.name"],
                status=draw(st.sampled_from([StatusCode.UNSET, StatusCode.UNSET, StatusCode.ERROR])),
                attributes=draw(st.sampled_from(ATTRS)),
                resource=res,
                ref_type=RefType.FOLLOWS_FROM
                if follows and draw(st.integers(0, 7)) == 0
                else RefType.CHILD_OF,
            )
        )
    return Trace(tid, spans)


def summary(trace: Trace):
    tree = run_checked(trace)
    return (
        tree.attribution,
        [(h["span_id"], h["layer"], h["self_ms"], h["start_ms"]) for h in tree.hops],
        tree.diagnosis,
        tree.root.duration,
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(span_trees())
def test_attribution_sums_exactly_and_nothing_is_negative(trace: Trace) -> None:
    tree = run_checked(trace)
    assert sum(tree.attribution.values()) == tree.root.duration
    assert all(v >= 0 for v in tree.attribution.values())
    assert all(n.self_ns >= 0 for n in tree.nodes)
    assert sum(n.self_ns for n in tree.nodes) == tree.root.duration
    segs = tree.segments
    assert all(s < e for _, s, e in segs)
    assert all(a[2] == b[1] for a, b in itertools.pairwise(segs))
    if segs:
        assert segs[0][1] == tree.root.start and segs[-1][2] == tree.root.end


@settings(max_examples=100, deadline=None)
@given(span_trees())
def test_same_input_same_output(trace: Trace) -> None:
    assert summary(trace) == summary(Trace(trace.trace_id, list(trace.spans)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(span_trees(follows=False, max_spans=15))
def test_format_round_trips_give_the_same_attribution(trace: Trace) -> None:
    expected = run_checked(trace).attribution
    docs = {
        "otlp": to_otlp(trace.spans),
        "jaeger": to_jaeger([trace.spans]),
        "zipkin": to_zipkin(trace.spans),
    }
    for fmt, doc in docs.items():
        (back,) = read_traces(io.BytesIO(json.dumps(doc).encode()), on_warning=lambda w: None)
        assert run_checked(back).attribution == expected, fmt

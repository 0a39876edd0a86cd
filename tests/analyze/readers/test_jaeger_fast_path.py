"""The Jaeger reader's fast path gives exactly what the span-by-span checks give, on every shape.

``JaegerConverter._fast_trace`` skips the per-id checks for the common trace and hands anything
unusual to ``_checked_trace``; this compares the two on generated traces mixing what other
writers produce: uppercase, short, numeric and free-text ids, several references, references to
other traces, ``parentSpanID`` instead of references, missing processes, zero and negative times,
logs, and tag values that Python holds equal (1, 1.0 and true).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tracekit.analyze.readers.common import WarningReporter
from tracekit.analyze.readers.jaeger import _TRACE_DECODER, JaegerConverter


class Recorder:
    """A span sink that records everything in order."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def add_groups(self, groups: dict[str, list[Any]], roots: set[str]) -> None:
        self.events.append(("groups", {tid: list(spans) for tid, spans in groups.items()}, set(roots)))

    def add(self, span: Any) -> None:
        self.events.append(("add", span))

    def warn(self, trace_id: str, message: str) -> None:
        self.events.append(("warn", trace_id, message))

    def zero_start(self, trace_id: str) -> None:
        self.events.append(("zero", trace_id))

    def alias(self, trace_id: str, span_id: str, name: str) -> None:
        self.events.append(("alias", trace_id, span_id, name))


TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN_IDS = ["b7ad6b7169203331", "00f067aa0ba902b7", "53995c3f42cd8ad8", "1111111111111111"]

ids = st.one_of(
    st.sampled_from(SPAN_IDS),
    st.sampled_from([s.upper() for s in SPAN_IDS]),
    st.sampled_from(["abc", "span-1", "", "0000000000000000", "zz" * 8]),
    st.integers(min_value=0, max_value=2**64),
)
tag_values = st.one_of(st.just(1), st.just(1.0), st.just(True), st.just("1"), st.just("server"))
tags = st.lists(
    st.fixed_dictionaries(
        {
            "key": st.sampled_from(["span.kind", "error", "otel.status_code", "http.route", "x"]),
            "type": st.sampled_from(["string", "bool", "int64", "float64"]),
            "value": tag_values,
        }
    ),
    max_size=3,
)
refs = st.lists(
    st.fixed_dictionaries(
        {
            "refType": st.sampled_from(["CHILD_OF", "FOLLOWS_FROM", "child_of", "OTHER"]),
            "traceID": st.sampled_from([TRACE, TRACE.upper(), "1" * 32]),
            "spanID": ids,
        }
    ),
    max_size=2,
)
spans = st.fixed_dictionaries(
    {
        "traceID": st.sampled_from([TRACE, TRACE.upper(), "not hex"]),
        "spanID": ids,
        "operationName": st.sampled_from(["GET", "SELECT"]),
        "references": refs,
        "startTime": st.sampled_from([1_700_000_000_000_000, 0, -5, 1.7e15]),
        "duration": st.sampled_from([10, 0, -3, 2.5]),
        "tags": tags,
        "logs": st.sampled_from(
            [[], [{"timestamp": 1_700_000_000_000_001, "fields": [{"key": "event", "value": "x"}]}]]
        ),
        "processID": st.sampled_from(["p1", "p2", "missing"]),
    },
    optional={"parentSpanID": ids},
)
traces = st.fixed_dictionaries(
    {
        "traceID": st.just(TRACE),
        "spans": st.lists(spans, max_size=5),
        "processes": st.just(
            {
                "p1": {
                    "serviceName": "shop",
                    "tags": [{"key": "k8s.pod.name", "type": "string", "value": "a"}],
                },
                "p2": {"serviceName": "db", "tags": [{"key": "n", "type": "int64", "value": 1}]},
            }
        ),
    }
)


def _run(trace: dict[str, Any], fast: bool) -> tuple[list[Any], list[str]]:
    sink = Recorder()
    source_warnings: list[str] = []
    conv = JaegerConverter(sink, WarningReporter("t.json", source_warnings.append))
    decoded = _TRACE_DECODER.decode(json.dumps(trace).encode())
    if fast:
        conv._trace(decoded, None)
    else:
        groups: dict[str, list[Any]] = {}
        roots: set[str] = set()
        conv._checked_trace(decoded, groups, roots, None)
        if groups:
            sink.add_groups(groups, roots)
    return sink.events, source_warnings


@settings(max_examples=400, deadline=None)
@given(traces)
def test_the_fast_path_is_the_checked_path(trace: dict[str, Any]) -> None:
    assert _run(trace, fast=True) == _run(trace, fast=False)


def test_common_traces_take_the_fast_path_and_equal_tags_stay_apart() -> None:
    """A trace as Jaeger writes it is converted without the checks; tags whose values Python holds
    equal (1, 1.0, true) keep their own values although tag lists are shared by content."""
    spans_ = [
        {
            "traceID": TRACE,
            "spanID": sid,
            "references": [{"refType": "CHILD_OF", "traceID": TRACE, "spanID": SPAN_IDS[0]}] if n else [],
            "startTime": 1_700_000_000_000_000 + n,
            "duration": 5,
            "tags": [{"key": "x", "type": "string", "value": value}],
            "processID": "p1",
        }
        for n, (sid, value) in enumerate(zip(SPAN_IDS, [1, 1.0, True, 1], strict=True))
    ]
    trace = {"traceID": TRACE, "spans": spans_, "processes": {"p1": {"serviceName": "shop"}}}
    conv = JaegerConverter(Recorder(), WarningReporter("t.json", None))
    groups: dict[str, list[Any]] = {}
    assert conv._fast_trace(_TRACE_DECODER.decode(json.dumps(trace).encode()), groups, set())
    values = [span.attributes["x"] for span in groups[TRACE]]
    assert [(v, type(v)) for v in values] == [(1, int), (1.0, float), (True, bool), (1, int)]
    first, *_, last = groups[TRACE]
    assert first.attributes is last.attributes and first.resource is last.resource

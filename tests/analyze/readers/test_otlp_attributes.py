"""OTLP attribute lists are decoded once per distinct list and shared; bad ones still name their field.

The OTLP reader keeps span and resource ``attributes`` as raw JSON while decoding and turns each
distinct list into a dict once (otlp.py, ``_Style``). These tests pin what that must not change:
values, sharing only between identical lists, and the warnings and errors for malformed lists.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tracekit.analyze.readers import otlp, read_traces
from tracekit.errors import TraceFormatError

TID = "cd" * 16


def kv(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def span(sid: str, parent: str | None = None, **attrs: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "traceId": TID,
        "spanId": sid,
        "name": f"op-{sid[-2:]}",
        "kind": 2,
        "startTimeUnixNano": "1000",
        "endTimeUnixNano": "2000",
        "attributes": [kv(k.replace("_", "."), v) for k, v in attrs.items()],
    }
    if parent:
        d["parentSpanId"] = parent
    return d


def line(*spans: dict[str, Any], pod: str = "web-1", resource: list[Any] | None = None) -> str:
    attrs = resource if resource is not None else [kv("service.name", "web"), kv("k8s.pod.name", pod)]
    return json.dumps(
        {"resourceSpans": [{"resource": {"attributes": attrs}, "scopeSpans": [{"spans": list(spans)}]}]}
    )


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_identical_lists_share_one_dict_and_different_ones_do_not(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        line(
            span("0000000000000001", http_route="/cart", code=200),
            span("0000000000000002", "0000000000000001"),
        ),
        line(span("0000000000000003", "0000000000000001", http_route="/cart", code=200)),
        line(span("0000000000000004", "0000000000000001", http_route="/cart", code=500), pod="web-2"),
    )
    (trace,) = read_traces(path)
    a, b, c, d = trace.spans
    assert a.attributes == c.attributes == {"http.route": "/cart", "code": 200}
    assert a.attributes is c.attributes  # same JSON text on two lines: decoded once
    assert b.attributes == {}
    assert d.attributes == {"http.route": "/cart", "code": 500}
    assert a.resource is b.resource is c.resource  # one resource, repeated on every line
    assert a.resource == {"service.name": "web", "k8s.pod.name": "web-1"}
    assert d.resource == {"service.name": "web", "k8s.pod.name": "web-2"}
    assert {s.service for s in trace.spans} == {"web"}


def test_values_stay_right_when_the_cache_starts_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(otlp, "ATTRIBUTE_CACHE_SIZE", 2)
    spans = [span("0000000000000001", n=0)] + [
        span(f"{i:016x}", "0000000000000001", n=i % 5, pod=f"p{i % 3}") for i in range(2, 40)
    ]
    path = write(tmp_path, *(line(s, pod=f"web-{i % 4}") for i, s in enumerate(spans)))
    (trace,) = read_traces(path)
    assert [s.attributes for s in trace.spans] == [{"n": 0}] + [
        {"n": i % 5, "pod": f"p{i % 3}"} for i in range(2, 40)
    ]
    assert [s.resource["k8s.pod.name"] for s in trace.spans] == [f"web-{i % 4}" for i in range(39)]


def test_a_malformed_attribute_drops_only_itself_and_names_the_field(tmp_path: Path) -> None:
    """One bad value costs that attribute, not the span (partial input, partial results): the
    span is kept with its other attributes and its trace says what was dropped."""
    bad = span("0000000000000002", "0000000000000001")
    bad["attributes"] = [kv("ok", "yes"), {"key": "n", "value": {"intValue": "many"}}]
    path = write(
        tmp_path, line(span("0000000000000001", a="b"), bad, span("0000000000000003", "0000000000000001"))
    )
    warnings: list[str] = []
    (trace,) = read_traces(path, on_warning=warnings.append)
    assert [s.span_id for s in trace.spans] == ["0000000000000001", "0000000000000002", "0000000000000003"]
    assert trace.spans[0].attributes == {"a": "b"}
    assert trace.spans[1].attributes == {"ok": "yes"}
    assert warnings == []
    assert trace.warnings == [
        "span 0000000000000002: field attributes[1].value.intValue: Expected `int | null`, got `str`; "
        "attribute 'n' dropped"
    ]


def test_attributes_of_the_wrong_shape_are_dropped_not_the_span(tmp_path: Path) -> None:
    bad = span("0000000000000002", "0000000000000001") | {"attributes": {"not": "a list"}}
    path = write(
        tmp_path, line(span("0000000000000001"), bad), line(span("0000000000000003", "0000000000000001"))
    )
    warnings: list[str] = []
    (trace,) = read_traces(path, on_warning=warnings.append)
    assert [s.span_id for s in trace.spans] == ["0000000000000001", "0000000000000002", "0000000000000003"]
    assert trace.spans[1].attributes == {}
    assert warnings == []
    assert trace.warnings == [
        "span 0000000000000002: field attributes: Expected `array`, got `dict`; attributes dropped"
    ]


def test_a_malformed_resource_attribute_fails_its_line_with_the_full_path(tmp_path: Path) -> None:
    bad_resource = [kv("service.name", "web"), {"key": "port", "value": {"intValue": [1]}}]
    good = line(span("0000000000000001"))
    path = write(tmp_path, good, line(span("0000000000000002", "0000000000000001"), resource=bad_resource))
    warnings: list[str] = []
    (trace,) = read_traces(path, on_warning=warnings.append)
    assert [s.span_id for s in trace.spans] == ["0000000000000001"]
    assert warnings == [
        f"{path}:2: OTLP JSON: field $.resourceSpans[0].resource.attributes[1].value.intValue: "
        "Expected `int | null`, got `array`"
    ]
    only_bad = write(tmp_path, line(span("0000000000000001"), resource=bad_resource))
    with pytest.raises(TraceFormatError, match=r"resource\.attributes\[1\]\.value\.intValue"):
        list(read_traces(only_bad))


def test_snake_case_attributes_are_decoded_with_their_own_names(tmp_path: Path) -> None:
    camel = line(span("0000000000000001", route="/a"))
    snake = json.dumps(
        {
            "resource_spans": [
                {
                    "resource": {"attributes": [{"key": "service.name", "value": {"string_value": "db"}}]},
                    "scope_spans": [
                        {
                            "spans": [
                                {
                                    "trace_id": TID,
                                    "span_id": "0000000000000002",
                                    "parent_span_id": "0000000000000001",
                                    "name": "q",
                                    "start_time_unix_nano": 1000,
                                    "end_time_unix_nano": 2000,
                                    "attributes": [{"key": "rows", "value": {"int_value": "3"}}],
                                }
                            ]
                        }
                    ],
                }
            ]
        }
    )
    (trace,) = read_traces(write(tmp_path, camel, snake))
    root, query = trace.spans
    assert root.attributes == {"route": "/a"} and root.service == "web"
    assert query.attributes == {"rows": 3} and query.service == "db"


def test_a_malformed_attribute_beside_a_malformed_span_still_costs_only_itself(tmp_path: Path) -> None:
    """The line is re-read leniently for the other span's bad field; the bad attribute is still
    salvaged, as on a line without other damage."""
    bad_attr = span("0000000000000002", "0000000000000001")
    bad_attr["attributes"] = [kv("ok", "yes"), {"key": "n", "value": {"intValue": "many"}}]
    bad_time = span("0000000000000003", "0000000000000001") | {"startTimeUnixNano": "soon"}
    path = write(tmp_path, line(span("0000000000000001"), bad_attr, bad_time))
    warnings: list[str] = []
    (trace,) = read_traces(path, on_warning=warnings.append)
    assert [s.span_id for s in trace.spans] == ["0000000000000001", "0000000000000002"]
    assert trace.spans[1].attributes == {"ok": "yes"}
    assert len(warnings) == 1 and "spans[2].startTimeUnixNano" in warnings[0]
    assert trace.warnings == [
        "span 0000000000000002: field attributes[1].value.intValue: Expected `int | null`, got `str`; "
        "attribute 'n' dropped"
    ]

"""Input written to hurt the reader: nesting past the decoders' recursion limit and times beyond the
representable range are input errors naming the line or field, never an internal error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tracekit.analyze.readers import read_traces
from tracekit.cli import main
from tracekit.errors import TraceFormatError

TID = "5b8efff798038103d269b633813fc60c"


def _span(sid: str, **fields: object) -> dict[str, object]:
    return {
        "traceId": TID,
        "spanId": sid,
        "name": f"op-{sid[-2:]}",
        "kind": 2,
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000000001000000",
        **fields,
    }


def _line(*spans: dict[str, object]) -> str:
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": list(spans)}]}]})


DEEP_ARRAYS = "[" * 10_000 + "]" * 10_000
DEEP_IN_OTLP = '{"resourceSpans": ' + "[" * 10_000 + "]" * 10_000 + "}"


def test_a_deeply_nested_line_is_skipped_with_a_warning_and_the_rest_is_read(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(
        "\n".join([_line(_span("a" * 16)), DEEP_ARRAYS, DEEP_IN_OTLP, _line(_span("b" * 16))]) + "\n"
    )
    warnings: list[str] = []
    [trace] = read_traces(path, on_warning=warnings.append)
    assert sorted(span.span_id for span in trace.spans) == ["a" * 16, "b" * 16]
    assert [w.split(": ", 1)[0] for w in warnings] == [f"{path}:2", f"{path}:3"]
    assert all("nested too deeply" in w for w in warnings)


def test_the_cli_reports_deep_nesting_as_input_not_as_an_internal_error(tmp_path: Path) -> None:
    lines = tmp_path / "t.jsonl"
    lines.write_text(_line(_span("a" * 16)) + "\n" + DEEP_IN_OTLP + "\n")
    result = CliRunner().invoke(main, ["analyze", str(lines)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "internal error" not in result.output
    document = tmp_path / "t.json"
    document.write_text('{"data": ' + DEEP_ARRAYS + "}")
    result = CliRunner().invoke(main, ["analyze", str(document)], catch_exceptions=False)
    assert result.exit_code == 2
    assert "JSON nested too deeply to read" in result.output
    assert "internal error" not in result.output


def test_a_single_deep_document_is_one_line_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(DEEP_IN_OTLP)
    with pytest.raises(TraceFormatError) as info:
        list(read_traces(path))
    assert str(info.value).startswith(f"{path}:")
    assert "nested too deeply" in str(info.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [("endTimeUnixNano", str(10**30)), ("endTimeUnixNano", str(2**64)), ("startTimeUnixNano", str(2**63))],
)
def test_an_otlp_time_beyond_the_range_drops_its_span_naming_the_field(
    tmp_path: Path, field: str, value: str
) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(_line(_span("a" * 16), _span("b" * 16, parentSpanId="a" * 16, **{field: value})) + "\n")
    warnings: list[str] = []
    [trace] = read_traces(path, on_warning=warnings.append)
    assert [span.span_id for span in trace.spans] == ["a" * 16]
    [warning] = warnings
    assert f"spans[1].{field}" in warning and "span dropped" in warning


def test_an_event_time_beyond_the_range_is_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    event = {"timeUnixNano": str(10**25), "name": "boom"}
    path.write_text(_line(_span("a" * 16), _span("b" * 16, events=[event])) + "\n")
    warnings: list[str] = []
    [trace] = read_traces(path, on_warning=warnings.append)
    assert [span.span_id for span in trace.spans] == ["a" * 16]
    assert "events[0].timeUnixNano" in warnings[0]


def test_jaeger_and_zipkin_microseconds_beyond_the_range_name_the_field(tmp_path: Path) -> None:
    jaeger = tmp_path / "jaeger.json"
    spans = [
        {"traceID": TID, "spanID": "a" * 16, "operationName": "ok", "startTime": 1_700_000_000_000_000,
         "duration": 5, "processID": "p1"},
        {"traceID": TID, "spanID": "b" * 16, "operationName": "far", "startTime": 1e30, "duration": 5,
         "processID": "p1"},
    ]  # fmt: skip
    processes = {"p1": {"serviceName": "svc"}}
    jaeger.write_text(json.dumps({"data": [{"traceID": TID, "spans": spans, "processes": processes}]}))
    warnings: list[str] = []
    [trace] = read_traces(jaeger, on_warning=warnings.append)
    assert [span.span_id for span in trace.spans] == ["a" * 16]
    assert "field startTime" in warnings[0]
    zipkin = tmp_path / "zipkin.json"
    zipkin.write_text(
        json.dumps(
            [
                {
                    "traceId": TID,
                    "id": "a" * 16,
                    "name": "x",
                    "timestamp": 1_700_000_000_000_000,
                    "duration": 10**22,
                }
            ]
        )
    )
    with pytest.raises(TraceFormatError) as info:
        list(read_traces(zipkin))  # its only span: nothing usable
    assert "field $[0].duration" in str(info.value)
    good = {"traceId": TID, "id": "b" * 16, "name": "y", "timestamp": 1_700_000_000_000_000, "duration": 5}
    zipkin.write_text(json.dumps([json.loads(zipkin.read_text())[0], good]))
    warnings.clear()
    [trace] = read_traces(zipkin, on_warning=warnings.append)  # beside a good span: that span dropped
    assert [span.span_id for span in trace.spans] == ["b" * 16]
    assert len(warnings) == 1 and "span 1 dropped: field duration" in warnings[0]

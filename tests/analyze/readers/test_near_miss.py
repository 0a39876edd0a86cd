"""Documents that look like trace data but are not: refused with one line saying what they look like."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tracekit.analyze.readers import read_traces
from tracekit.cli import main
from tracekit.errors import UnknownFormatError

TEMPO_SEARCH = {
    "traces": [
        {
            "traceID": "2f3e0cee77ae5dc9c17ade3689eb2e54",
            "rootServiceName": "shop",
            "rootTraceName": "GET /api/items",
            "startTimeUnixNano": "1700000000000000000",
            "durationMs": 12,
            "spanSet": {"spans": [{"spanID": "563d623c76514f8e", "durationNanos": "12000000"}], "matched": 1},
        }
    ],
    "metrics": {"inspectedBytes": "1234"},
}
OTLP_METRICS = {"resourceMetrics": [{"resource": {"attributes": []}, "scopeMetrics": []}]}
OTLP_LOGS = {"resourceLogs": [{"resource": {"attributes": []}, "scopeLogs": []}]}
ZIPKIN_V1 = [
    {
        "traceId": "5af7183fb1d4cf5f",
        "id": "352bff9a74ca9ad2",
        "name": "get",
        "annotations": [{"timestamp": 1700000000000000, "value": "sr", "endpoint": {"serviceName": "api"}}],
        "binaryAnnotations": [{"key": "http.path", "value": "/api"}],
    }
]


@pytest.mark.parametrize(
    ("doc", "says"),
    [
        (TEMPO_SEARCH, "a Tempo search response (trace summaries without spans)"),
        (OTLP_METRICS, "OTLP metrics, not traces"),
        (OTLP_LOGS, "OTLP logs, not traces"),
        (ZIPKIN_V1, "Zipkin v1 JSON"),
    ],
)
def test_near_miss_is_refused_saying_what_it_looks_like(tmp_path: Path, doc: object, says: str) -> None:
    path = tmp_path / "input.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(UnknownFormatError) as err:
        list(read_traces(path))
    assert says in str(err.value)
    result = CliRunner().invoke(main, ["analyze", str(path)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and str(path) in lines[0] and says in lines[0], result.output


def test_a_jaeger_file_mentioning_the_keys_in_a_tag_is_still_read(tmp_path: Path) -> None:
    # The near-miss keys count as keys only: a tag value holding the text is data.
    doc = {
        "data": [
            {
                "traceID": "ab" * 8,
                "spans": [
                    {
                        "traceID": "ab" * 8,
                        "spanID": "cd" * 8,
                        "operationName": "op",
                        "startTime": 1_700_000_000_000_000,
                        "duration": 10,
                        "tags": [{"key": "note", "type": "string", "value": '{"rootServiceName": "x"}'}],
                        "processID": "p1",
                    }
                ],
                "processes": {"p1": {"serviceName": "svc", "tags": []}},
            }
        ]
    }
    path = tmp_path / "jaeger.json"
    path.write_text(json.dumps(doc))
    (trace,) = read_traces(path)
    assert len(trace.spans) == 1

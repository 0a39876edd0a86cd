"""The text report never hands a terminal the control sequences a span name carries."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from tracekit.analyze.renderers.text import clean
from tracekit.cli import main

TID = "5b8efff798038103d269b633813fc60c"
HOSTILE = "GET \x1b]0;owned\x07\x1b[2J\x9b31m\u202eevil\r\nx"


def test_clean_writes_controls_and_bidi_overrides_as_visible_escapes() -> None:
    assert clean(HOSTILE) == "GET \\x1b]0;owned\\x07\\x1b[2J\\x9b31m\\u202eevil\\x0d\\x0ax"
    assert clean("café ✓ 名前") == "café ✓ 名前"


def test_span_and_service_names_reach_the_text_report_escaped(tmp_path: Path) -> None:
    span = {
        "traceId": TID,
        "spanId": "a" * 16,
        "name": HOSTILE,
        "kind": 2,
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000000001000000",
        "attributes": [{"key": "http.route", "value": {"stringValue": "/r\x1b[5m"}}],
    }
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "svc\x1b[31m"}}]}
    path = tmp_path / "t.jsonl"
    path.write_text(
        json.dumps({"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": [span]}]}]})
    )
    result = CliRunner().invoke(main, ["analyze", str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert not any(ch in result.output for ch in "\x1b\x07\x9b\u202e\r")
    assert "svc\\x1b[31m: GET \\x1b]0;owned" in result.output

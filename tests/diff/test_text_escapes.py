"""``tracekit diff``'s text never hands a terminal the control sequences a route name carries."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from tests.diff.captures import capture, write_otlp
from tracekit.cli import main

#: As it stands in the JSON files: ESC ] 0 ; (set the window title), BEL, ESC [ 2 J (clear the screen).
HOSTILE_JSON = "/api/\\u001b]0;owned\\u0007\\u001b[2Jitems"


def test_route_names_reach_the_diff_text_escaped(tmp_path: Path) -> None:
    paths = []
    for name, traces in (
        ("base.jsonl", capture(200, 31)),
        ("cand.jsonl", capture(200, 32, shift_layer="db", shift_ms=5.0, failure="db", failure_every=10)),
    ):
        path = write_otlp(tmp_path / name, traces)
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace("/api/items", HOSTILE_JSON), encoding="utf-8")
        paths.append(str(path))
    result = CliRunner().invoke(main, ["diff", *paths], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "/api/\\x1b]0;owned\\x07\\x1b[2Jitems" in result.output

"""``tracekit analyze --format html|jaeger``: the CLI writes the two report files."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from tests.analyze.renderers.shopdata import OTLP_FILE
from tracekit.analyze.api import analyze_paths
from tracekit.analyze.readers import read_traces
from tracekit.cli import main


def test_analyze_writes_html(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["analyze", str(OTLP_FILE), "-o", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert 'id="tracekit-data"' in html and "</html>" in html


def test_analyze_writes_jaeger_that_reads_back(tmp_path: Path) -> None:
    out = tmp_path / "traces.json"
    result = CliRunner().invoke(main, ["analyze", str(OTLP_FILE), "--format", "jaeger", "-o", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert len(doc["data"]) == 7
    assert len(list(read_traces(out))) == 7
    before, after = analyze_paths([OTLP_FILE]), analyze_paths([out])
    assert after["summary"]["layers"] == before["summary"]["layers"]
    assert [t["layers"] for t in after["traces"]] == [t["layers"] for t in before["traces"]]

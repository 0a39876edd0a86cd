"""The diff on the real exports of ../shared/real-traces: each file against itself is unchanged, and
captures of unrelated systems, in different formats, compare without an error."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from click.testing import CliRunner

from tests.analyze.readers.test_real_files import FILES, REAL, manifest, needs_real
from tracekit.cli import main


def diff_json(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["diff", *args, "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def numbers(value: Any) -> list[float]:
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in numbers(v)]
    return [float(value)] if isinstance(value, int | float) and not isinstance(value, bool) else []


@needs_real
@pytest.mark.parametrize("name", FILES)
def test_real_file_against_itself_is_unchanged(name: str) -> None:
    data = diff_json(str(REAL / name), str(REAL / name))
    assert data["baseline"]["traces"] == data["candidate"]["traces"] == manifest()[name][0]
    assert data["verdict"] == "unchanged"
    assert all(row["p_value"] == 1.0 and row["shift_ms"] == 0.0 for row in data["layers"].values())
    assert data["new_failure_reasons"] == []


@needs_real
def test_unrelated_captures_in_different_formats_compare() -> None:
    data = diff_json(str(REAL / "jaeger"), str(REAL / "zipkin"), "-b", str(REAL / "otlp"))
    assert data["baseline"]["traces"] == sum(
        manifest()[f][0] for f in FILES if f.split("/")[0] in ("jaeger", "otlp")
    )
    assert data["candidate"]["traces"] == sum(manifest()[f][0] for f in FILES if f.startswith("zipkin/"))
    assert all(math.isfinite(n) for n in numbers(data))
    assert data["layers"]

"""The demo's two captures, from the command line as the README shows them: the diff names ``db``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from demo_app.scenarios import DELAY_MS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def tracekit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracekit", *args], capture_output=True, text=True, check=False, timeout=240
    )


def test_slow_db_capture_against_a_baseline_names_db(tmp_path: Path) -> None:
    base, cand = tmp_path / "base.jsonl", tmp_path / "cand.jsonl"
    for scenario, path in (("baseline", base), ("slow-db", cand)):
        done = tracekit("demo", "--requests", "60", "--scenario", scenario, "--traces", str(path))
        assert done.returncode == 0, done.stderr[-2000:]
    text = tracekit("diff", str(base), str(cand))
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("regressed: db +")
    data = json.loads(tracekit("diff", str(base), str(cand), "--format", "json").stdout)
    db = data["layers"]["db"]
    assert db["verdict"] == "regressed"
    # Every statement is DELAY_MS slower and each request runs at least one, so the typical request
    # spends about that much longer in the db layer.
    assert db["shift_ms"] >= 0.9 * DELAY_MS
    assert max(data["layers"].items(), key=lambda kv: kv[1]["shift_ms"])[0] == "db"
    assert tracekit("diff", str(base), str(cand), "--fail-on-regression").returncode == 1

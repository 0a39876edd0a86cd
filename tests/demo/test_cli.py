"""``tracekit demo`` from the command line: output, files, and clean-up on Ctrl-C / SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tracekit.analyze.api import analyze_paths
from tracekit.cli import main


def test_demo_text_output_report_and_kept_traces(tmp_path: Path) -> None:
    report, traces = tmp_path / "report.html", tmp_path / "spans.jsonl"
    args = ["demo", "--requests", "20", "--replicas", "1", "--scenario", "db-error"]
    result = CliRunner().invoke(main, [*args, "--report", str(report), "--traces", str(traces)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "scenario db-error" in out
    assert "A representative trace" in out and "Where the time went, per layer" in out
    assert "Verdict" in out and "injected: db" in out
    assert report.is_file() and report.read_text().lstrip().lower().startswith("<!doctype html")
    assert analyze_paths([traces])["summary"]["traces"] == 20


def test_demo_json_output() -> None:
    result = CliRunner().invoke(main, ["demo", "--requests", "20", "--replicas", "1", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["scenario"] == "baseline" and data["match"] is True
    assert data["requests_sent"] == data["traces_received"] == data["traces_analyzed"] == 20
    assert set(data["layer_p50_ms"]) >= {"edge", "ingress", "service", "app", "sidecar", "db"}
    assert data["summary"]["traces"] == 20


def test_demo_rejects_an_unknown_scenario() -> None:
    result = CliRunner().invoke(main, ["demo", "--scenario", "nope"])
    assert result.exit_code == 2
    assert "nope" in result.output


def _children(pid: int) -> set[int]:
    """Direct children of ``pid``, from /proc (the demo's children are its direct children)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(entry))
    return found


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_stops_every_process(sig: signal.Signals) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracekit", "demo", "--requests", "2000", "--replicas", "1", "--rate", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # wait for the load to start: every process is up by then
            if "load generator started" in line:
                break
        else:
            pytest.fail("the demo never started its load")
        children = _children(proc.pid)
        assert len(children) >= 4  # ingress, app, db, loadgen
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    deadline = time.monotonic() + 10
    while not all(_gone(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(_gone(pid) for pid in children), [p for p in children if not _gone(p)]

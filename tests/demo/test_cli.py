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
from tracekit.analyze.renderers.text import TextRenderer
from tracekit.cli import main


@pytest.mark.slow
def test_demo_text_output_report_and_kept_traces(tmp_path: Path) -> None:
    # The files' directories do not exist yet: the demo creates them before it starts.
    report, traces = tmp_path / "out" / "report.html", tmp_path / "kept" / "spans.jsonl"
    args = ["demo", "--requests", "20", "--replicas", "1", "--scenario", "db-error"]
    result = CliRunner().invoke(main, [*args, "--report", str(report), "--traces", str(traces)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "scenario db-error" in out
    assert "A representative trace" in out and "Where the time went, per layer" in out
    assert "Verdict" in out and "injected: db" in out
    # Not a terminal: rows are laid out at the analyzer's width for files and pipes, where the
    # waterfall rows need more than 150 columns.
    assert 150 < max(len(line) for line in out.splitlines()) <= TextRenderer.width_default
    assert report.is_file() and report.read_text().lstrip().lower().startswith("<!doctype html")
    assert analyze_paths([traces])["summary"]["traces"] == 20


@pytest.mark.slow
def test_demo_json_output() -> None:
    result = CliRunner().invoke(main, ["demo", "--requests", "20", "--replicas", "1", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["scenario"] == "baseline" and data["match"] is True
    assert data["requests_sent"] == data["traces_received"] == data["traces_analyzed"] == 20
    assert set(data["layer_p50_ms"]) >= {"edge", "ingress", "service", "app", "sidecar", "db"}
    assert data["summary"]["traces"] == 20


def test_demo_refuses_an_unwritable_report_before_starting(tmp_path: Path) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("a file where the directory should be")
    result = CliRunner().invoke(main, ["demo", "--report", str(blocker / "r.html")])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        f"tracekit demo: error: {blocker / 'r.html'}: cannot create its directory: a file is in the way"
    ]
    assert result.stdout == ""  # nothing ran: not even the banner


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


@pytest.mark.slow
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

"""``tracekit diff`` on the command line: inputs of every kind, the three outputs, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.diff.captures import capture, write_otlp, write_zipkin
from tracekit.cli import main

CONTRACT_ROW = {"baseline", "candidate", "shift_ms", "ci_ms", "p_value", "verdict"}
CONTRACT_STATS = {"count", "mean_ms", "p50_ms", "p95_ms", "p99_ms"}


def run(*args: str) -> Any:
    return CliRunner().invoke(main, ["diff", *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A baseline and a candidate whose db is 5 ms slower and fails on every 20th request."""
    root = tmp_path_factory.mktemp("pair")
    base = write_otlp(root / "base.jsonl", capture(240, 21))
    cand = write_zipkin(
        root / "cand.json",
        capture(240, 22, shift_layer="db", shift_ms=5.0, failure="db", failure_every=20, first=10_000),
    )
    return base, cand


def test_json_follows_the_contract(pair: tuple[Path, Path]) -> None:
    result = run(str(pair[0]), str(pair[1]), "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["baseline"]["traces"] == 240 and data["baseline"]["sources"] == [str(pair[0])]
    assert data["candidate"]["traces"] == 240 and data["candidate"]["sources"] == [str(pair[1])]
    for row in [*data["layers"].values(), *(r for e in data["routes"] for r in e["layers"].values())]:
        assert set(row) >= CONTRACT_ROW
        assert set(row["baseline"]) >= CONTRACT_STATS and set(row["candidate"]) >= CONTRACT_STATS
        assert len(row["ci_ms"]) == 2 and row["verdict"] in ("regressed", "improved", "unchanged")
        assert 0.0 <= row["p_value"] <= 1.0
    assert data["layers"]["db"]["verdict"] == "regressed"
    assert {e["route"] for e in data["routes"]} == {"GET /api/items", "GET /api/cart", "GET /api/checkout"}
    db_failures = data["failures"]["db"]
    assert (db_failures["baseline"], db_failures["candidate"], db_failures["verdict"]) == (0, 12, "regressed")
    assert list(data["failures"]) == ["db"]
    assert data["failure_kinds"][0] == {"layer": "db", "kind": "db-error", "baseline": 0, "candidate": 12}
    assert len(data["new_failure_reasons"]) == 1 and "database" in data["new_failure_reasons"][0]


def test_text_starts_with_what_regressed_most(pair: tuple[Path, Path]) -> None:
    result = run(str(pair[0]), str(pair[1]))
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first.startswith("regressed: db +") and "99% CI" in first
    assert "Routes that changed" in result.output
    assert "Failure reasons new in the candidate" in result.output


def test_same_capture_says_nothing_changed(pair: tuple[Path, Path]) -> None:
    result = run(str(pair[0]), str(pair[0]), "--fail-on-regression")
    assert result.exit_code == 0
    assert result.output.startswith("nothing changed beyond noise")


def test_fail_on_regression_exits_1(pair: tuple[Path, Path], tmp_path: Path) -> None:
    assert run(str(pair[0]), str(pair[1])).exit_code == 0
    assert run(str(pair[0]), str(pair[1]), "--fail-on-regression").exit_code == 1
    # The floor: a 5 ms shift (and no failure) under --min-shift-ms 10 is unchanged, so nothing fails.
    slower = write_otlp(
        tmp_path / "slower.jsonl", capture(240, 23, shift_layer="db", shift_ms=5.0, first=10_000)
    )
    assert run(str(pair[0]), str(slower), "--fail-on-regression").exit_code == 1
    assert run(str(pair[0]), str(slower), "--fail-on-regression", "--min-shift-ms", "10").exit_code == 0


def test_saved_reports_give_the_same_diff(pair: tuple[Path, Path], tmp_path: Path) -> None:
    reports = []
    for path in pair:
        out = tmp_path / f"{path.stem}.report.json"
        assert CliRunner().invoke(main, ["analyze", str(path), "-o", str(out)]).exit_code == 0
        reports.append(out)
    from_traces = json.loads(run(str(pair[0]), str(pair[1]), "--format", "json").output)
    from_reports = json.loads(run(str(reports[0]), str(reports[1]), "--format", "json").output)
    for data in (from_traces, from_reports):
        for key in ("baseline", "candidate"):
            data[key].pop("sources")
    assert from_reports == from_traces


def test_reformatted_and_truncated_reports(pair: tuple[Path, Path], tmp_path: Path) -> None:
    """A report re-indented by a tool (one document, read whole) gives the same diff as the streamed one
    (read a trace a line); a streamed report cut short is refused, naming the file."""
    streamed = tmp_path / "base.report.json"
    assert CliRunner().invoke(main, ["analyze", str(pair[0]), "-o", str(streamed)]).exit_code == 0
    assert streamed.read_bytes().startswith(b'{"traces":[{')
    pretty = tmp_path / "pretty.json"
    pretty.write_text(json.dumps(json.loads(streamed.read_text()), indent=1))
    one = json.loads(run(str(streamed), str(pair[1]), "--format", "json").output)
    two = json.loads(run(str(pretty), str(pair[1]), "--format", "json").output)
    one["baseline"].pop("sources"), two["baseline"].pop("sources")
    assert one == two
    cut = tmp_path / "cut.json"
    lines = streamed.read_bytes().splitlines(keepends=True)
    cut.write_bytes(b"".join(lines[: len(lines) // 2]))
    result = run(str(cut), str(pair[1]))
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert f"{cut}: analyzer report: truncated" in result.output


def test_report_saved_with_slowest_is_refused(pair: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "slowest.json"
    CliRunner().invoke(main, ["analyze", str(pair[0]), "--slowest", "3", "-o", str(out)])
    result = run(str(out), str(pair[1]))
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert "holds 3 of its 240 traces" in result.output and str(out) in result.output


def test_a_side_from_several_files_and_a_directory(tmp_path: Path) -> None:
    base_dir = tmp_path / "base"
    base_dir.mkdir()
    write_otlp(base_dir / "a.jsonl", capture(100, 31))
    write_otlp(base_dir / "b.jsonl", capture(100, 32, first=5_000))
    (base_dir / ".hidden").write_text("not traces")
    c1 = write_otlp(tmp_path / "c1.jsonl", capture(100, 33, first=10_000))
    c2 = write_zipkin(tmp_path / "c2.json", capture(100, 34, first=15_000))
    data = json.loads(run(str(base_dir), str(c1), "-c", str(c2), "--format", "json").output)
    assert data["baseline"]["traces"] == 200 and len(data["baseline"]["sources"]) == 2
    assert data["candidate"]["traces"] == 200 and data["candidate"]["sources"] == [str(c1), str(c2)]


def test_route_filter_compares_only_matching_requests(pair: tuple[Path, Path]) -> None:
    data = json.loads(run(str(pair[0]), str(pair[1]), "--route", "GET /api/ca*", "--format", "json").output)
    assert [e["route"] for e in data["routes"]] == ["GET /api/cart"]
    assert data["baseline"]["traces"] < data["baseline"]["traces_read"] == 240


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["only-one.json"], "give BASELINE and CANDIDATE"),
        (["{base}", "{missing}"], "missing.json: cannot open"),
        (["{base}", "{garbage}"], "garbage.txt"),
        (["{base}", "{base}", "-o", "{out}.pdf"], "cannot tell the output format"),
        (["{base}", "{base}", "-o", "{base}"], "also an input"),
        (["{base}", "{base}", "--alpha", "0"], "--alpha"),
        (["{base}", "{empty_dir}"], "directory holds no trace file"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    pair: tuple[Path, Path], tmp_path: Path, args: list[str], needle: str
) -> None:
    (tmp_path / "garbage.txt").write_text("hello, world\n")
    (tmp_path / "empty").mkdir()
    values = {
        "base": str(pair[0]),
        "missing": str(tmp_path / "missing.json"),
        "garbage": str(tmp_path / "garbage.txt"),
        "out": str(tmp_path / "out"),
        "empty_dir": str(tmp_path / "empty"),
    }
    result = run(*(a.format(**values) for a in args))
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1, result.output
    assert result.output.startswith("tracekit diff: error: ") and needle in result.output


def test_output_file_by_suffix(pair: tuple[Path, Path], tmp_path: Path) -> None:
    for suffix, check in (
        (".json", lambda t: json.loads(t)["verdict"] == "regressed"),
        (".txt", lambda t: t.startswith("regressed: db")),
    ):
        out = tmp_path / f"diff{suffix}"
        assert run(str(pair[0]), str(pair[1]), "-o", str(out)).exit_code == 0
        assert check(out.read_text())


def test_output_into_a_missing_directory_creates_it(pair: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "reports" / "nightly" / "diff.json"
    assert run(str(pair[0]), str(pair[1]), "-o", str(out)).exit_code == 0
    assert json.loads(out.read_text())["verdict"] == "regressed"
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    result = run(str(pair[0]), str(pair[1]), "-o", str(blocked / "diff.json"))
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output


def test_sides_read_in_two_processes_give_the_same_result(pair: tuple[Path, Path]) -> None:
    one = json.loads(run(str(pair[0]), str(pair[1]), "--format", "json", "--jobs", "1").output)
    two = json.loads(run(str(pair[0]), str(pair[1]), "--format", "json", "--jobs", "2").output)
    assert one == two


def test_stdin_feeds_one_side(pair: tuple[Path, Path]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tracekit", "diff", str(pair[0]), "-", "--format", "json"],
        input=pair[1].read_bytes(),
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["candidate"]["traces"] == 240


def test_too_few_requests_say_so(tmp_path: Path) -> None:
    """Three requests a side cannot reach alpha 0.01 whatever they show: the headline says that rather
    than "nothing changed"."""
    base = write_otlp(tmp_path / "b.jsonl", capture(3, 41))
    cand = write_otlp(tmp_path / "c.jsonl", capture(3, 42, shift_layer="db", shift_ms=50.0, first=10_000))
    result = run(str(base), str(cand))
    assert result.exit_code == 0
    assert result.output.startswith("too few requests to tell a change from noise (3 against 3")


def test_routes_too_small_are_named_not_compared(pair: tuple[Path, Path]) -> None:
    result = run(str(pair[0]), str(pair[1]), "--min-route-traces", "100")
    data = json.loads(run(str(pair[0]), str(pair[1]), "--min-route-traces", "100", "--format", "json").output)
    assert data["routes"] == []
    assert {r["route"] for r in data["routes_not_compared"]} == {
        "GET /api/items",
        "GET /api/cart",
        "GET /api/checkout",
    }
    assert "3 route(s) not compared (fewer than 100 requests on a side)" in result.output

"""``tracekit analyze`` end to end: formats, -o suffixes, filters, exit codes and one-line errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.analyze.cli_run import one_line_error, run
from tests.analyze.truth import (
    anomalous_otlp_lines,
    request_trace,
    to_jaeger,
    to_otlp,
    to_otlp_lines,
    to_zipkin,
)
from tracekit.cli import main

CONTRACT_SUMMARY = {"traces", "spans", "error_traces", "layers"}
CONTRACT_LAYER = {"mean_ms", "p50_ms", "p95_ms", "p99_ms", "share"}
CONTRACT_TRACE = {"trace_id", "duration_ms", "status", "layers", "hops", "diagnosis", "warnings"}
CONTRACT_HOP = {"layer", "service", "name", "span_id", "start_ms", "duration_ms", "self_ms", "k8s"}


@pytest.fixture(scope="module")
def built():
    return [
        request_trace(101),
        request_trace(102, failure="db"),
        request_trace(103, fanout=3),
        request_trace(104, failure="ingress"),
    ]


@pytest.fixture
def otlp_file(tmp_path: Path, built) -> Path:
    path = tmp_path / "traces.jsonl"
    path.write_text(to_otlp_lines([s for b in built for s in b.spans], per_line=5))
    return path


def test_json_output_follows_the_contract(otlp_file: Path, built) -> None:
    result = run(str(otlp_file), "--format", "json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    summary = report["summary"]
    assert set(summary) >= CONTRACT_SUMMARY
    assert summary["traces"] == len(built) and summary["error_traces"] == 2
    for entry in summary["layers"].values():
        assert set(entry) >= CONTRACT_LAYER
    assert abs(sum(e["share"] for e in summary["layers"].values()) - 1) < 1e-4
    for trace in report["traces"]:
        assert set(trace) >= CONTRACT_TRACE
        assert len(trace["trace_id"]) == 32 and trace["trace_id"] == trace["trace_id"].lower()
        assert trace["status"] in ("ok", "error")
        assert abs(sum(trace["layers"].values()) - trace["duration_ms"]) < 1e-6
        assert set(trace["diagnosis"]) >= {"failed_layer", "reason", "span_id"}
        for hop in trace["hops"]:
            assert set(hop) >= CONTRACT_HOP
        assert abs(sum(h["self_ms"] for h in trace["hops"]) - trace["duration_ms"]) < 1e-6
    failed = {t["trace_id"]: t["diagnosis"]["failed_layer"] for t in report["traces"]}
    assert failed == {b.trace_id: b.failed_layer for b in built}


@pytest.mark.parametrize(
    ("suffix", "marker"), [(".json", '"summary"'), (".txt", "Where the time went"), (".html", "<html")]
)
def test_output_suffix_picks_the_format(otlp_file: Path, tmp_path: Path, suffix: str, marker: str) -> None:
    out = tmp_path / f"report{suffix}"
    result = run(str(otlp_file), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    text = out.read_text()
    assert marker in text.lower() if marker == "<html" else marker in text
    if suffix == ".json":
        json.loads(text)


def test_text_output_draws_the_slowest_and_the_failed(otlp_file: Path, built) -> None:
    result = run(str(otlp_file))
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for layer in ("edge", "ingress", "service", "app", "sidecar", "db"):
        assert layer in out
    assert "broke in" in out and "database statement failed" in out
    assert "no ingress rule matched" in out
    assert "pod/shop-5c6b-xyz12" in out


def test_text_output_to_a_file_keeps_whole_rows(otlp_file: Path, tmp_path: Path) -> None:
    """A file or pipe has no width of its own: at 150 columns the waterfall table was cut at the
    edge, and the ingress rows lost their node name (``node/`` and nothing after it)."""
    out = tmp_path / "report.txt"
    result = run(str(otlp_file), "--slowest", "3", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    rows = [line for line in out.read_text().splitlines() if "ingress: GET" in line]
    assert rows and all(line.rstrip().endswith("node/node-1") for line in rows), rows


def test_slowest_and_trace_id_filters(otlp_file: Path, built) -> None:
    result = run(str(otlp_file), "--format", "json", "--slowest", "2")
    report = json.loads(result.stdout)
    durations = [t["duration_ms"] for t in report["traces"]]
    assert len(durations) == 2 and durations == sorted(durations, reverse=True)
    assert report["summary"]["traces"] == len(built)
    want = built[1].trace_id
    result = run(str(otlp_file), "--format", "json", "--trace-id", want.lstrip("0").upper())
    report = json.loads(result.stdout)
    assert [t["trace_id"] for t in report["traces"]] == [want]


def test_trace_id_not_found_is_exit_2(otlp_file: Path) -> None:
    one_line_error(run(str(otlp_file), "--trace-id", "abc"), "not found")


def test_several_formats_at_once(tmp_path: Path, built) -> None:
    (tmp_path / "a.json").write_text(json.dumps(to_jaeger([built[0].spans])))
    (tmp_path / "b.json").write_text(json.dumps(to_zipkin(built[1].spans)))
    (tmp_path / "c.json").write_text(json.dumps(to_otlp(built[2].spans)))
    result = run(*(str(tmp_path / n) for n in ("a.json", "b.json", "c.json")), "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["summary"]["traces"] == 3


def test_jaeger_upload_format(otlp_file: Path, built) -> None:
    result = run(str(otlp_file), "--format", "jaeger", "--slowest", "1")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)["data"]
    assert len(data) == 1


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "empty"),
        (b'{"resourceSpans": [', "truncated"),
        (b'{"hello": "world"}', "not a trace"),
        (bytes(range(256)) * 4, ""),
        (b"\xff\xfe{}", ""),
    ],
    ids=["empty", "truncated", "other-json", "binary", "bad-utf8"],
)
def test_unusable_input_is_one_line_and_exit_2(tmp_path: Path, content: bytes, needle: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    result = run(str(path), "--format", "json")
    one_line_error(result, str(path))
    assert needle.lower() in result.stderr.lower()
    assert result.stdout == ""


def test_missing_file_and_unwritable_output(tmp_path: Path, otlp_file: Path) -> None:
    one_line_error(run(str(tmp_path / "nope.json")), "nope.json")
    one_line_error(run(str(otlp_file), "-o", str(tmp_path / "r.xyz")), "r.xyz", "suffix")
    one_line_error(run(str(otlp_file), "--format", "json", "-o", str(tmp_path)), "is a directory")


@pytest.mark.parametrize("suffix", ["json", "html", "txt"])
def test_output_directories_are_created(tmp_path: Path, otlp_file: Path, suffix: str) -> None:
    out = tmp_path / "no" / "dir" / f"r.{suffix}"
    result = run(str(otlp_file), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert out.stat().st_size > 0


def test_output_under_a_file_is_refused_before_any_work(tmp_path: Path, otlp_file: Path) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("a file where the directory should be")
    result = run(str(otlp_file), "-o", str(blocker / "r.json"))
    one_line_error(result, str(blocker / "r.json"), "cannot create its directory: a file is in the way")
    assert result.stdout == ""


def test_partial_input_gives_results_and_warnings(tmp_path: Path, otlp_file: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("garbage")
    result = run(str(otlp_file), str(bad), "--format", "json")
    assert result.exit_code == 0
    assert "bad.json" in result.stderr
    assert json.loads(result.stdout)["summary"]["traces"] == 4


def test_bad_rules_file_is_one_line(tmp_path: Path, otlp_file: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - layer: nowhere\n")
    one_line_error(run(str(otlp_file), "--rules", str(rules)), "rules.yaml", "rule 1", "layer")
    rules.write_text("rules: [\n")
    one_line_error(run(str(otlp_file), "--rules", str(rules)), "rules.yaml", "YAML")
    one_line_error(run(str(otlp_file), "--rules", str(tmp_path / "missing.yaml")), "missing.yaml")


def test_user_rules_change_the_layers(tmp_path: Path, otlp_file: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {layer: external, service: [shop-db]}\n")
    report = json.loads(run(str(otlp_file), "--rules", str(rules), "--format", "json").stdout)
    hops = [h for t in report["traces"] for h in t["hops"] if h["service"] == "shop-db"]
    assert hops and {h["span_layer"] for h in hops} == {"external"}


def test_argument_errors(otlp_file: Path) -> None:
    one_line_error(run(), "no input")
    one_line_error(run("--jaeger", "http://127.0.0.1:1"), "--service")
    one_line_error(run(str(otlp_file), "--service", "shop"), "--jaeger")


def test_stdin(otlp_file: Path) -> None:
    result = CliRunner().invoke(main, ["analyze", "-", "--format", "json"], input=otlp_file.read_bytes())
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["summary"]["traces"] == 4


def test_jaeger_source(httpserver, built) -> None:
    body = {"result": to_otlp([s for b in built[:2] for s in b.spans])}
    httpserver.expect_request("/api/v3/traces").respond_with_json(body)
    result = run(
        "--jaeger",
        httpserver.url_for("/"),
        "--service",
        "shop",
        "--lookback",
        "2h",
        "--limit",
        "5",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert {t["trace_id"] for t in report["traces"]} == {built[0].trace_id, built[1].trace_id}
    (request, _), *_ = httpserver.log
    assert request.args.get("query.service_name") == "shop"


def test_jaeger_source_by_trace_id(httpserver, built) -> None:
    tid = built[1].trace_id
    httpserver.expect_request(f"/api/v3/traces/{tid}").respond_with_json({"result": to_otlp(built[1].spans)})
    result = run("--jaeger", httpserver.url_for("/"), "--trace-id", tid, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert [t["trace_id"] for t in json.loads(result.stdout)["traces"]] == [tid]


def test_jaeger_unreachable_is_exit_2() -> None:
    one_line_error(run("--jaeger", "http://127.0.0.1:9", "--service", "shop"), "127.0.0.1:9")


@pytest.mark.slow
def test_subprocess_exit_codes(otlp_file: Path, tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "tracekit", "analyze", str(otlp_file), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["summary"]["traces"] == 4
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"')
    out = subprocess.run(
        [sys.executable, "-m", "tracekit", "analyze", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def _write_variant(tmp_path: Path, name: str, mutate) -> Path:
    import msgspec

    built = request_trace(150)
    spans = mutate(list(built.spans), msgspec.structs.replace)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(to_otlp(spans)))
    return path


def test_parent_cycle_in_a_file_is_a_warning(tmp_path: Path) -> None:
    def cycle(spans, replace):
        app = next(s for s in spans if s.name == "GET /api/items" and s.service == "shop")
        call = next(s for s in spans if s.service == "shop" and s.kind == 3)
        spans[spans.index(app)] = replace(app, parent_id=call.span_id)
        return spans

    result = run(str(_write_variant(tmp_path, "cycle", cycle)), "--format", "json")
    assert result.exit_code == 0
    assert "parent cycle" in result.stderr
    trace = json.loads(result.stdout)["traces"][0]
    assert abs(sum(trace["layers"].values()) - trace["duration_ms"]) < 1e-6


def test_end_before_start_root_is_clamped_and_another_root_analysed(tmp_path: Path) -> None:
    def backwards(spans, replace):
        spans[0] = replace(spans[0], end_ns=spans[0].start_ns - 5_000)
        return spans

    result = run(str(_write_variant(tmp_path, "backwards", backwards)), "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert "end before start" in result.stderr
    trace = json.loads(result.stdout)["traces"][0]
    assert trace["root"]["service"] == "ingress" and trace["duration_ms"] > 0


def test_all_lines_bad_is_still_one_line(tmp_path: Path) -> None:
    path = tmp_path / "lines.jsonl"
    path.write_text('{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": 5}]}]}]}\n' * 3 + "{oops\n")
    one_line_error(run(str(path), "--format", "json"), "lines.jsonl")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--slowest", "0"], "--slowest"),
        (["--slowest", "-1"], "--slowest"),
        (["--slowest", "abc"], "--slowest"),
        (["--warnings", "-1"], "--warnings"),
        (["--warnings", "x"], "--warnings"),
        (["--format", "xml"], "--format"),
        (["--limit", "0"], "--limit"),
        (["--no-such-option"], "--no-such-option"),
        (["--trace-id"], "--trace-id"),
    ],
)
def test_bad_option_values_are_one_line(otlp_file: Path, args: list[str], needle: str) -> None:
    one_line_error(run(str(otlp_file), *args), needle)


def test_help_still_prints_usage() -> None:
    result = run("--help")
    assert result.exit_code == 0 and "Usage:" in result.stdout


def test_trace_id_of_a_non_hex_jaeger_file_can_be_selected(tmp_path: Path, built) -> None:
    # Synthetic Jaeger files use ids such as "trace-123"; the reader hashes them to hex, and
    # `--trace-id trace-123` used to answer "not found".
    doc = to_jaeger([built[0].spans])
    doc["data"][0]["traceID"] = "trace-123"
    for span in doc["data"][0]["spans"]:
        span["traceID"] = "trace-123"
        for ref in span.get("references", []):
            ref["traceID"] = "trace-123"
    path = tmp_path / "nonhex.json"
    path.write_text(json.dumps(doc))
    every = json.loads(run(str(path), "--format", "json").stdout)
    (hashed,) = [t["trace_id"] for t in every["traces"]]
    for given in ("trace-123", hashed, hashed.upper()):
        result = run(str(path), "--format", "json", "--trace-id", given)
        assert result.exit_code == 0, (given, result.stderr)
        assert [t["trace_id"] for t in json.loads(result.stdout)["traces"]] == [hashed]


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_trace_id_in_any_case_short_or_0x(otlp_file: Path, built, monkeypatch, jobs: str) -> None:
    monkeypatch.setenv("TRACEKIT_PARALLEL_MIN_BYTES", "1")
    tid = built[1].trace_id
    for given in (tid.upper(), "0x" + tid.lstrip("0"), tid.lstrip("0")):
        result = run(str(otlp_file), "--format", "json", "--trace-id", given, "--jobs", jobs)
        assert result.exit_code == 0, result.stderr
        assert [t["trace_id"] for t in json.loads(result.stdout)["traces"]] == [tid]


@pytest.mark.parametrize("given", ["", "   ", "a" * 33, "f" * 64])
def test_impossible_trace_id_is_a_clear_error(otlp_file: Path, given: str) -> None:
    # Used to say "trace id(s) ... not found in the input", as if the id could have been there.
    one_line_error(run(str(otlp_file), "--trace-id", given), "--trace-id", "not a trace id")


def test_anomalous_input_json_text_html_agree(tmp_path: Path) -> None:
    path = anomalous_otlp_lines(tmp_path / "anomalous.jsonl")
    summary = json.loads(run(str(path), "--format", "json").stdout)["summary"]
    assert summary["traces"] and summary["error_traces"]
    text = run(str(path), "--format", "text").stdout
    counts = re.search(r"([\d,]+) traces, ([\d,]+) spans, ([\d,]+) failed", text)
    assert counts is not None
    assert [int(c) for c in counts.groups()] == [summary[k] for k in ("traces", "spans", "error_traces")]
    for layer, entry in summary["layers"].items():
        row = re.search(rf"^\s+{layer}\s+(\d+)\s", text, re.M)
        assert row is not None and int(row[1]) == entry["count"], layer
    html = tmp_path / "r.html"
    assert run(str(path), "-o", str(html)).exit_code == 0
    blob = re.search(
        r'<script type="application/json" id="tracekit-data">(.*?)</script>', html.read_text(), re.S
    )
    assert blob is not None
    page = json.loads(blob.group(1).replace("<\\/", "</"))["summary"]
    assert [page[k] for k in ("traces", "spans", "error_traces")] == [
        summary[k] for k in ("traces", "spans", "error_traces")
    ]
    assert {k: (v["count"], round(v["mean_ms"], 3)) for k, v in page["layers"].items()} == {
        k: (v["count"], round(v["mean_ms"], 3)) for k, v in summary["layers"].items()
    }


@pytest.mark.parametrize("fmt", ["json", "text", "html"])
def test_output_that_is_an_input_is_refused(otlp_file: Path, fmt: str) -> None:
    # `tracekit analyze t.jsonl -o t.jsonl --format json` used to truncate the input while
    # streaming it, report what had been read so far and exit 0: the trace file was gone.
    before = otlp_file.read_bytes()
    alias = otlp_file.parent / "." / otlp_file.name
    one_line_error(run(str(otlp_file), "-o", str(alias), "--format", fmt), "output file is also an input")
    assert otlp_file.read_bytes() == before

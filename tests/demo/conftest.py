"""Shared helpers: run a demo scenario for real (processes, loopback HTTP, SQLite) and analyse it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from demo_app import scenarios
from demo_app.launcher import Demo, DemoOptions, DemoRun
from demo_app.verdict import judge
from tracekit.analyze.api import analyze_paths


@dataclass
class Outcome:
    run: DemoRun
    report: dict[str, Any]
    verdict: dict[str, Any]
    lines_in_file: int
    trace_ids_in_file: set[str]


def run_scenario(name: str, *, requests: int = 60, replicas: int = 1, **kwargs: Any) -> Outcome:
    scenario = scenarios.get(name)
    demo = Demo(DemoOptions(scenario, requests=requests, replicas=replicas, **kwargs))
    try:
        run = demo.run()
        report = analyze_paths([run.traces_path], include_spans=True)
        lines = run.traces_path.read_bytes().splitlines()
        from tracekit.receiver.codec import from_otlp_json, trace_ids

        ids: set[str] = set()
        for line in lines:
            ids |= trace_ids(from_otlp_json(line))
        return Outcome(run, report, judge(scenario, run, report), len(lines), ids)
    finally:
        demo.cleanup()


_cache: dict[str, Outcome] = {}


@pytest.fixture(scope="session")
def baseline() -> Outcome:
    if "baseline" not in _cache:
        _cache["baseline"] = run_scenario("baseline", requests=60)
    return _cache["baseline"]


def assert_nothing_lost(outcome: Outcome) -> None:
    """Requests sent = traces in the file = traces analysed, and they are the same traces."""
    sent = set(outcome.run.trace_ids)
    assert len(sent) == len(outcome.run.results) == outcome.run.options.requests
    assert outcome.trace_ids_in_file == sent
    assert outcome.report["summary"]["traces"] == len(sent)
    assert {t["trace_id"] for t in outcome.report["traces"]} == sent

"""Which trace reports ``Analysis`` keeps when asked for the slowest N and some failed ones."""

from __future__ import annotations

from tests.analyze.truth import Built, Layout, request_trace
from tracekit.analyze.api import Analysis, choose
from tracekit.analyze.processors.timeline import hops_as_dicts


def _build(plan: list[tuple[int, str | None]]) -> list[Built]:
    """One request per (app time before the sidecar call in µs, injected failure), in order."""
    return [request_trace(i + 1, Layout(app=(app_us, 1000)), failure=f) for i, (app_us, f) in enumerate(plan)]


def test_failed_are_the_first_in_read_order_not_among_the_slowest() -> None:
    # (app time before the sidecar call in µs, injected failure), in read order. The two slowest
    # include a failed trace (the 4th) and a tie (the 3rd and 5th take as long: the earlier wins).
    plan = [(1000, "app"), (2000, "db"), (9000, None), (20000, "sidecar"), (9000, "app"), (3000, "app")]
    built = _build(plan)
    analysis = Analysis(slowest=2, failed=2)
    reports = [analysis.add(b.trace()) for b in built]
    assert [r["status"] for r in reports] == ["error", "error", "ok", "error", "error", "error"]

    kept = [r["trace_id"] for r in analysis.kept()]
    ids = [b.trace_id for b in built]
    durations = [r["duration_ms"] for r in reports]
    assert durations[3] > durations[2] == durations[4] > max(durations[0], durations[1], durations[5])
    # The slowest two (slowest first, the 3rd before the 5th on the tie), then the first two failed
    # traces in read order that are not among them (the 4th is, so the 1st and 2nd).
    assert kept == [ids[3], ids[2], ids[0], ids[1]]


def test_a_failed_trace_bumped_from_the_slowest_keeps_its_place_in_read_order() -> None:
    # The 1st (failed) is the slowest until the 3rd arrives; it is then the first failed trace in
    # read order that is not among the slowest, so it is the one shown, not the 2nd.
    plan = [(9000, "app"), (1000, "db"), (20000, None)]
    built = _build(plan)
    analysis = Analysis(slowest=1, failed=1)
    for b in built:
        analysis.add(b.trace())
    assert [r["trace_id"] for r in analysis.kept()] == [built[2].trace_id, built[0].trace_id]


def test_workers_selections_merge_into_the_single_process_choice() -> None:
    # Ties, failed traces among the slowest and failed ones outside: split between two "workers"
    # that see every other trace, each trace stamped with its place in the input as a worker's are.
    plan = [
        (9000, "app"),
        (1000, "db"),
        (20000, None),
        (9000, None),
        (3000, "sidecar"),
        (20000, "app"),
        (500, "app"),
        (9000, "db"),
        (700, None),
    ]
    built = _build(plan)
    single = Analysis(slowest=3, failed=2)
    workers = [Analysis(slowest=3, failed=2), Analysis(slowest=3, failed=2)]
    for i, b in enumerate(built):
        single.add(b.trace())
        trace = b.trace()
        trace.order = (0, i, 1, 0)
        workers[i % 2].add(trace)
    expected = [r["trace_id"] for r in single.kept()]
    merged = [r["trace_id"] for r in choose([w.selection() for w in workers], 3, 2)]
    assert merged == expected
    assert len(expected) == 5


def test_hops_are_built_for_the_reports_that_can_be_kept_and_are_those_of_a_full_analysis() -> None:
    """Keeping only some reports, a report that cannot be kept gets no hops (a tenth of the
    analysis saved); a kept one has exactly the hops a full analysis gives it."""
    plan = [(1000, None), (2000, "db"), (9000, None), (500, None), (20000, "sidecar"), (300, "app")]
    built = _build(plan)
    analysis = Analysis(slowest=1, failed=1)
    reports = [analysis.add(b.trace()) for b in built]
    # Kept when added: the 1st (slowest so far), 2nd (the first failed), 3rd and 5th (slowest so
    # far); the 4th and 6th could not be kept (not slower, and the failed slots were taken).
    assert [bool(r["hops"]) for r in reports] == [True, True, True, False, True, False]
    full = Analysis()
    expected = {r["trace_id"]: r for r in (full.analyse(b.trace()) for b in built) if r is not None}
    for report in analysis.kept():
        assert report["hops"] == hops_as_dicts(expected[report["trace_id"]]["hops"])
        assert {k: v for k, v in report.items() if k != "hops"} == {
            k: v for k, v in expected[report["trace_id"]].items() if k != "hops"
        }
    assert analysis.summary() == full.summary()

"""The flow diagram draws what the processors decided: the DB test, whom a call reached, its network
time (one computation each, in the processors; the page does not decide them again)."""

from __future__ import annotations

from pathlib import Path

from tests.analyze.shapes import SHAPES, traefik
from tests.analyze.test_formats import write
from tracekit.analyze.api import analyze_paths
from tracekit.analyze.renderers.html import build_view


def _flow(name_or_shape, tmp_path: Path, fmt: str = "otlp") -> dict:
    shape = SHAPES[name_or_shape]() if isinstance(name_or_shape, str) else name_or_shape
    report = analyze_paths([write(fmt, [shape], tmp_path)], include_spans=True, on_warning=lambda _: None)
    return build_view(report)["flow"]


def test_a_database_call_in_any_convention_is_a_database_node(tmp_path: Path) -> None:
    for name in ("db-opentracing", "db-brave-sql-query", "db-remote-endpoint"):
        (tmp_path / name).mkdir()
        nodes = _flow(name, tmp_path / name)["nodes"]
        assert [n["kind"] for n in nodes if n["layer"] == "db"] == ["database"], (name, nodes)
        assert not [n for n in nodes if n["kind"] == "external"], name


def test_the_callee_of_an_untraced_call_is_named_as_the_processors_name_it(tmp_path: Path) -> None:
    # The auth call writes its callee only in url.full: the node is the host, not the span's name.
    nodes = _flow("rejected-403", tmp_path)["nodes"]
    assert [n["label"] for n in nodes if n["kind"] == "external"] == ["auth.example.com"]


def test_edge_network_time_is_the_processors_figure(tmp_path: Path) -> None:
    # Traefik's ReverseProxy call: 7.4 ms, the pod's span covers 7.0 ms: 0.4 ms on the wire.
    flow = _flow(traefik(40), tmp_path)
    by_id = {n["id"]: n for n in flow["nodes"]}
    into_app = [e for e in flow["edges"] if by_id[e["to"]]["layer"] == "app"]
    assert [e["net_p50_ms"] for e in into_app] == [0.4]

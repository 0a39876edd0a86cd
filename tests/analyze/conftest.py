"""Shared helpers for the analyzer tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.analyze.truth import Built, request_trace, to_otlp_lines
from tracekit.analyze.model import Trace
from tracekit.analyze.processors import Options, default_processors
from tracekit.analyze.rules import load_rules
from tracekit.analyze.tree import SpanTree, build_span_tree

_OPTIONS = Options(rules=load_rules())


def run_checked(trace: Trace, options: Options = _OPTIONS) -> SpanTree:
    """Build the tree and run every default processor, calling ``self_check()`` after each."""
    tree = build_span_tree(trace)
    tree.self_check()
    for step in default_processors(options):
        tree = step(tree, options)
        tree.self_check()
    return tree


@pytest.fixture
def options() -> Options:
    return _OPTIONS


@pytest.fixture(scope="module")
def built() -> list[Built]:
    """Two requests with known ground truth: a healthy one and one the database broke."""
    return [request_trace(201), request_trace(202, failure="db")]


@pytest.fixture
def otlp_file(tmp_path: Path, built: list[Built]) -> Path:
    """``built`` as Collector file-exporter lines."""
    path = tmp_path / "traces.jsonl"
    path.write_text(to_otlp_lines([s for b in built for s in b.spans], per_line=4))
    return path

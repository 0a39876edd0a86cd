"""Shared helpers for the analyzer tests."""

from __future__ import annotations

import pytest

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

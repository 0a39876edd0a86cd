"""Processors: small pure steps over one :class:`~tracekit.analyze.tree.SpanTree`.

Every processor has the same signature::

    tree = processor(tree, options)

It returns the tree it was given (filled in further), so the steps chain and tests can call
``tree.self_check()`` after each. :func:`default_processors` is the one ordered list; options can
remove entries (``Options(adjust_skew=False)`` drops the clock-skew step).

Aggregation across traces is the odd one out (it folds many trees into one summary), so it is a small
class in :mod:`tracekit.analyze.processors.aggregates` rather than a tree processor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tracekit.analyze.rules import RuleTable, load_rules
from tracekit.analyze.tree import SpanTree


@dataclass(frozen=True)
class Options:
    """What the processors need to know besides the tree."""

    #: The layer rule table (built-in rules plus the user's ``--rules`` file).
    rules: RuleTable = field(default_factory=load_rules)
    #: Shift remote SERVER spans into their CLIENT parents (Jaeger's clock-skew adjuster).
    adjust_skew: bool = True


Processor = Callable[[SpanTree, Options], SpanTree]


def default_processors(options: Options) -> list[Processor]:
    """The ordered processor list: each step relies on the ones before it."""
    from tracekit.analyze.processors.attribution import attribute_layers
    from tracekit.analyze.processors.clock_skew import adjust_clock_skew
    from tracekit.analyze.processors.critical_path import critical_path
    from tracekit.analyze.processors.diagnosis import diagnose
    from tracekit.analyze.processors.layers import classify_layers
    from tracekit.analyze.processors.timeline import build_timeline, count_outside_work

    steps: list[Processor] = [
        adjust_clock_skew,
        classify_layers,
        critical_path,
        attribute_layers,
        diagnose,
        count_outside_work,
        build_timeline,  # last: Analysis skips it for a report it will not keep
    ]
    if not options.adjust_skew:
        steps.remove(adjust_clock_skew)
    return steps

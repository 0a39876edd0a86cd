"""What every renderer declares (after pyinstrument's ``renderers/base.py``).

A renderer turns the analysis into one output document. Most take the JSON-contract report dict
(:func:`tracekit.analyze.api.analyze_paths`); the Jaeger renderer takes the Trace objects instead
(``input = "traces"``), since Jaeger UI wants the spans, not the analysis.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal


class Renderer:
    """Base class: subclasses set the class attributes and implement :meth:`render`."""

    #: The ``--format`` name.
    name: ClassVar[str] = ""
    #: The file suffix ``-o`` maps to this renderer ("" when none does).
    output_file_extension: ClassVar[str] = ""
    #: What :meth:`render` takes: the report dict, or an iterable of Trace objects.
    input: ClassVar[Literal["report", "traces"]] = "report"
    #: Whether the report needs each trace's spans (``include_spans=True``).
    needs_spans: ClassVar[bool] = False

    def render(self, data: Any) -> str:
        raise NotImplementedError

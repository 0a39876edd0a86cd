"""The diff as one self-contained HTML page: side-by-side distributions per layer (overlaid ECDFs drawn
from the data), the per-layer table, the routes that changed and the failures.

The same page rules as the analyzer's report (``tracekit/analyze/renderers/html.py``): the CSS, the
script and the data are inlined, a Content-Security-Policy forbids fetching anything, and the data is
embedded with ``<``, ``>``, ``&`` and the JavaScript line separators escaped, so a route or a failure
reason holding ``</script>`` stays text. Each layer's distribution travels as
:data:`~tracekit.diff.compare.ECDF_POINTS` evenly spaced quantiles per side, whatever the trace count.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from tracekit import __version__
from tracekit.analyze.renderers.html import embed_json

_RESOURCES = "tracekit.diff.html_resources"
_PLACEHOLDER = re.compile(r"\{\{(TITLE|CSS|JS|DATA)\}\}")


def _resource(name: str) -> str:
    text = resources.files(_RESOURCES).joinpath(name).read_text(encoding="utf-8")
    if name.endswith((".js", ".css")) and "</" in text:
        raise RuntimeError(f"html resource {name} contains '</', which would close its element")
    return text


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def render_html(result: dict[str, Any], *, title: str = "tracekit diff") -> str:
    """The page for a diff (:func:`tracekit.diff.compare.diff`'s result)."""
    data = dict(result)
    data["meta"] = {"version": __version__, "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}
    parts = {
        "TITLE": _escape(title),
        "CSS": _resource("app.css"),
        "JS": _resource("app.js"),
        "DATA": embed_json(data),
    }
    return _PLACEHOLDER.sub(lambda m: parts[m.group(1)], _resource("template.html"))

"""Renderers: one per output format, looked up by ``--format`` name or by the ``-o`` file suffix.

``text`` and ``json`` are always here; ``html`` and ``jaeger`` live in their own modules and are
imported only when asked for, so a missing or broken one costs the other formats nothing.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from tracekit.analyze.renderers.base import Renderer
from tracekit.analyze.renderers.json import JSONRenderer, render_json, stream_json
from tracekit.analyze.renderers.text import TextRenderer
from tracekit.errors import RendererOptionError

__all__ = ["FORMATS", "Renderer", "format_for_path", "get_renderer", "render_json", "stream_json"]

#: ``--format`` names, in the order ``--help`` lists them.
FORMATS = ("text", "json", "html", "jaeger")

_SUFFIXES = {".json": "json", ".html": "html", ".htm": "html", ".txt": "text", ".text": "text"}


class HTMLRenderer(Renderer):
    """Self-contained HTML report (``tracekit.analyze.renderers.html.render_html``)."""

    name = "html"
    output_file_extension = "html"
    needs_spans = True

    def render(self, data: Any) -> str:
        return _load("html", "render_html")(data)


class JaegerRenderer(Renderer):
    """Jaeger UI upload JSON (``tracekit.analyze.renderers.jaeger.render_jaeger``) from Trace objects."""

    name = "jaeger"
    output_file_extension = ""
    input = "traces"

    def render(self, data: Any) -> str:
        return _load("jaeger", "render_jaeger")(data)


def _load(module: str, function: str) -> Any:
    try:
        mod = importlib.import_module(f"tracekit.analyze.renderers.{module}")
        return getattr(mod, function)
    except (ImportError, AttributeError) as exc:
        raise RendererOptionError(f"the {module} renderer is not available in this build ({exc})") from None


def get_renderer(name: str, **kwargs: Any) -> Renderer:
    """The renderer for a ``--format`` name."""
    if name == "text":
        return TextRenderer(**kwargs)
    if name == "json":
        return JSONRenderer()
    if name == "html":
        _load("html", "render_html")
        return HTMLRenderer()
    if name == "jaeger":
        _load("jaeger", "render_jaeger")
        return JaegerRenderer()
    raise RendererOptionError(f"unknown output format {name!r} (expected one of: {', '.join(FORMATS)})")


def format_for_path(path: str | Path) -> str | None:
    """The format an output file's suffix asks for (``.json``, ``.html``, ``.txt``), or None."""
    return _SUFFIXES.get(Path(path).suffix.lower())

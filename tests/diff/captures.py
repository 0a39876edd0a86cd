"""Generated captures with injected ground truth for the diff: per-layer times drawn at random, a
known shift added to one layer (on every route or on one), written in the formats real systems emit.

Each request is laid out by :func:`tests.analyze.truth.request_trace` (client -> ingress -> Service hop
-> app -> sidecar -> db), so the analyzer must find exactly the drawn per-layer times; the draws are
log-normal (latency is skewed) around the layout's defaults. Requests are spread over :data:`ROUTES`.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from msgspec.structs import replace

from tests.analyze.truth import MS, T0, Built, Layout, request_trace, to_otlp_lines, to_zipkin
from tracekit.analyze.model import Span

ROUTES = ("/api/items", "/api/cart", "/api/checkout")
#: Spread of each drawn time: sigma of the log-normal factor.
SIGMA = 0.35


def _draw(rng: random.Random, us: int) -> int:
    return max(1, round(us * rng.lognormvariate(0.0, SIGMA)))


def _pair(rng: random.Random, pair: tuple[int, int]) -> tuple[int, int]:
    return _draw(rng, pair[0]), _draw(rng, pair[1])


def _layout(rng: random.Random, shift_layer: str | None, shift_us: int) -> Layout:
    base = Layout()
    layout = Layout(
        edge=_pair(rng, base.edge),
        ingress=_pair(rng, base.ingress),
        service=_pair(rng, base.service),
        app=_pair(rng, base.app),
        sidecar_hop=_pair(rng, base.sidecar_hop),
        sidecar=_pair(rng, base.sidecar),
        db=[_draw(rng, us) for us in base.db],
    )
    if shift_layer is None or not shift_us:
        return layout
    if shift_layer == "db":
        layout.db = [layout.db[0] + shift_us, *layout.db[1:]]
    else:
        before, after = getattr(layout, shift_layer)
        setattr(layout, shift_layer, (before + shift_us, after))
    return layout


def _on_route(spans: list[Span], route: str) -> list[Span]:
    """The request's spans with ``/api/items`` (the layout's path) replaced by ``route``."""
    if route == "/api/items":
        return spans
    out = []
    for span in spans:
        attrs = {
            k: v.replace("/api/items", route) if isinstance(v, str) else v for k, v in span.attributes.items()
        }
        out.append(replace(span, name=span.name.replace("/api/items", route), attributes=attrs))
    return out


def capture(
    n: int,
    seed: int,
    *,
    shift_layer: str | None = None,
    shift_ms: float = 0.0,
    shift_route: str | None = None,
    failure: str | None = None,
    failure_every: int = 0,
    first: int = 1,
) -> list[Built]:
    """``n`` requests drawn with ``seed``; ``shift_ms`` added to ``shift_layer`` (on ``shift_route`` only,
    when given); every ``failure_every``-th request fails with ``failure`` (truth.request_trace's kinds)."""
    rng = random.Random(seed)
    shift_us = round(shift_ms * 1000)
    out = []
    for i in range(n):
        route = ROUTES[rng.randrange(len(ROUTES))]
        shifted = shift_route is None or shift_route == route
        layout = _layout(rng, shift_layer if shifted else None, shift_us)
        fail = failure if failure_every and i % failure_every == failure_every - 1 else None
        number = first + i
        built = request_trace(number, layout, failure=fail, start=T0 + number * 200 * MS)
        built.spans = _on_route(built.spans, route)
        out.append(built)
    return out


def write_otlp(path: Path, traces: list[Built]) -> Path:
    """Collector file-exporter JSON lines."""
    spans = [s for t in traces for s in t.spans]
    path.write_text(to_otlp_lines(spans, per_line=40), encoding="utf-8")
    return path


def write_zipkin(path: Path, traces: list[Built]) -> Path:
    """One Zipkin v2 JSON document (Brave's shape)."""
    path.write_text(json.dumps(to_zipkin([s for t in traces for s in t.spans])), encoding="utf-8")
    return path


def layer_ms(traces: list[Built], layer: str, route: str | None = None) -> list[float]:
    """The injected truth: each request's ms in ``layer`` (0 when none), optionally on one route."""
    out = []
    for t in traces:
        if route is not None and not any(s.attributes.get("http.route") == route for s in t.spans):
            continue
        out.append(t.truth.get(layer, 0) / MS)
    return out

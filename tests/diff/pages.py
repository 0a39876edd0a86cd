"""Diff results for the page tests: a known regression, failures, hostile strings in routes and reasons."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tracekit.diff import diff
from tracekit.diff.sides import Side, SideBuilder

HOSTILE_ROUTE = "GET /x</script><script>window.__pwned=1</script>"
HOSTILE_REASON = "database statement failed: db 'SELECT 1 -- </script><!--' (<b>locked</b> & gone)"
ROUTES = ("GET /api/items", "GET /api/cart", HOSTILE_ROUTE)


def _side(seed: int, db_shift: float, db_failures: int) -> Side:
    rng = np.random.default_rng(seed)
    builder = SideBuilder("side")
    n = 400
    for i in range(n):
        route = ROUTES[i % len(ROUTES)]
        layers = {
            "ingress": float(rng.lognormal(math.log(0.7), 0.3)),
            "app": float(rng.lognormal(math.log(6.0), 0.5)),
            "db": float(rng.lognormal(math.log(2.0), 0.6)) + db_shift,
        }
        failed = i < db_failures
        builder.add(
            layers,
            route,
            "db" if failed else None,
            "db-error" if failed else None,
            HOSTILE_REASON if failed else None,
        )
    return builder.side([f"capture-{seed}.jsonl"])


def regression() -> dict[str, Any]:
    """db 8 ms slower on every route, and 12 new db failures with a reason that tries to end the script."""
    return diff(_side(1, 0.0, 0), _side(2, 8.0, 12))

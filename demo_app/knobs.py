"""The environment knobs the scenarios turn: added latency per layer and error rates.

Every knob is read from the environment once at start, so the same image serves every scenario and a
cluster operator can reproduce one with ``kubectl set env deployment/shop DB_DELAY_MS=50``.

=====================  =========  =====================================================================
variable               read by    effect
=====================  =========  =====================================================================
``SHOP_DELAY_MS``      app        added to each request's handling in the app container (app layer)
``SHOP_ERROR_RATE``    app        fraction (0..1) of requests on which the app raises (500; app layer)
``SIDECAR_DELAY_MS``   db         added to each request in the data service, outside SQL (sidecar)
``DB_DELAY_MS``        db         added to every SQL statement, inside its span (db layer)
``DB_ERROR_RATE``      db         fraction (0..1) of statements SQLite refuses ("not authorized"; db)
``INGRESS_DELAY_MS``   ingress    added inside the local ingress hop, before the upstream call
``DEMO_SEED``          all        seed for the error draws, so a scenario run is repeatable
=====================  =========  =====================================================================
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass


def _float(env: Mapping[str, str], name: str, low: float = 0.0, high: float = float("inf")) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}: expected a number, got {raw!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name}: {value} is outside [{low}, {high}]")
    return value


@dataclass(frozen=True)
class Knobs:
    shop_delay_ms: float = 0.0
    shop_error_rate: float = 0.0
    sidecar_delay_ms: float = 0.0
    db_delay_ms: float = 0.0
    db_error_rate: float = 0.0
    ingress_delay_ms: float = 0.0
    seed: int | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Knobs:
        env = os.environ if env is None else env
        seed = env.get("DEMO_SEED", "").strip()
        return cls(
            shop_delay_ms=_float(env, "SHOP_DELAY_MS"),
            shop_error_rate=_float(env, "SHOP_ERROR_RATE", 0.0, 1.0),
            sidecar_delay_ms=_float(env, "SIDECAR_DELAY_MS"),
            db_delay_ms=_float(env, "DB_DELAY_MS"),
            db_error_rate=_float(env, "DB_ERROR_RATE", 0.0, 1.0),
            ingress_delay_ms=_float(env, "INGRESS_DELAY_MS"),
            seed=int(seed) if seed else None,
        )


class Dice:
    """A thread-safe, seedable coin for error injection (``random.Random`` is not shared safely)."""

    def __init__(self, seed: int | None) -> None:
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def roll(self, rate: float) -> bool:
        if rate <= 0.0:
            return False
        if rate >= 1.0:
            return True
        with self._lock:
            return self._random.random() < rate

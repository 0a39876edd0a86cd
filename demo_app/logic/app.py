"""The shop API (container ``app``): a Flask app that keeps its data in the DB sidecar.

Routes: ``GET /products``, ``GET /products/<id>``, ``POST /orders`` (``{"product_id", "quantity"}``),
``GET /healthz`` (liveness: the process serves) and ``GET /readyz`` (readiness: the sidecar answers, so
a pod whose data service is down leaves the Service's endpoints, as it should).

Every call to the sidecar goes over HTTP with ``requests`` (traced by ``tracekit.instrument``): the
in-pod hop is real and shows up as the ``sidecar`` layer.
"""

from __future__ import annotations

import os
import time
from typing import Any

import requests
from flask import Flask, Response, jsonify, request
from opentelemetry.instrumentation.utils import suppress_instrumentation

from demo_app.knobs import Dice, Knobs


class InjectedBug(RuntimeError):
    """What the app raises when ``SHOP_ERROR_RATE`` fires: an unhandled exception, as a real bug is."""


def create_app(db_url: str | None = None, knobs: Knobs | None = None) -> Flask:
    db_url = (db_url or os.environ.get("SHOP_DB_URL") or "http://127.0.0.1:9090").rstrip("/")
    knobs = knobs or Knobs.from_env()
    dice = Dice(knobs.seed)
    session = requests.Session()  # keep-alive to the sidecar, as a real client pool would
    app = Flask("shop")

    def _work() -> None:
        if knobs.shop_delay_ms:
            time.sleep(knobs.shop_delay_ms / 1000.0)

    def _maybe_bug(what: str) -> None:
        if dice.roll(knobs.shop_error_rate):
            raise InjectedBug(f"injected bug while {what} (SHOP_ERROR_RATE={knobs.shop_error_rate})")

    def _db(method: str, path: str, **kwargs: Any) -> requests.Response:
        return session.request(method, db_url + path, timeout=10, **kwargs)

    def _relay(resp: requests.Response) -> tuple[Response, int]:
        """Pass the sidecar's answer on; a sidecar failure is the app's 503 (the DB is unavailable)."""
        if resp.status_code >= 500:
            return jsonify(error="database unavailable", status=resp.status_code), 503
        return jsonify(resp.json()), resp.status_code

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        return jsonify(status="ok"), 200

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        # Probes are not user requests: no span for the probe's own sidecar call either.
        with suppress_instrumentation():
            try:
                ok = _db("GET", "/healthz").status_code == 200
            except requests.RequestException:
                ok = False
        return (jsonify(status="ready"), 200) if ok else (jsonify(status="sidecar not reachable"), 503)

    @app.get("/products")
    def list_products() -> tuple[Response, int]:
        _work()
        resp = _db("GET", "/products")
        _maybe_bug("listing products")
        return _relay(resp)

    @app.get("/products/<int:product_id>")
    def get_product(product_id: int) -> tuple[Response, int]:
        _work()
        resp = _db("GET", f"/products/{product_id}")
        _maybe_bug(f"rendering product {product_id}")
        return _relay(resp)

    @app.post("/orders")
    def create_order() -> tuple[Response, int]:
        _work()
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or "product_id" not in body:
            return jsonify(error="expected JSON {product_id, quantity}"), 400
        resp = _db(
            "POST", "/orders", json={"product_id": body["product_id"], "quantity": body.get("quantity", 1)}
        )
        _maybe_bug("pricing the order")
        return _relay(resp)

    return app

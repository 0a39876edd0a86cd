"""The DB sidecar: a small HTTP data service over SQLite, one DB span per SQL statement.

It runs beside the shop app in the same pod (container ``db``) and listens on loopback only: the app
reaches it at ``http://127.0.0.1:9090``, nothing outside the pod does. The schema and seed data are made
at start in ``DB_PATH`` (an ``emptyDir`` volume in the cluster), so a pod restart starts clean.

Every statement is a CLIENT span named ``"<operation> <table>"`` with the database semantic-convention
attributes, old and current (``db.system`` / ``db.system.name`` = ``sqlite``, ``db.statement`` /
``db.query.text``): tracekit's analyzer puts them in the ``db`` layer. The spans are made here with the
tracer rather than by an SQLite auto-instrumentation so that the injected ``DB_DELAY_MS`` lands inside
the statement's span, where a slow query's time would be.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, request
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from demo_app.knobs import Dice, Knobs

SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    price_cents INTEGER NOT NULL,
    stock INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id INTEGER NOT NULL REFERENCES products(id),
    quantity INTEGER NOT NULL,
    total_cents INTEGER NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
"""

PRODUCTS = [
    "kettle", "teapot", "mug", "saucer", "grinder", "scale", "filter", "dripper", "carafe", "tray",
    "spoon", "tin", "whisk", "bowl", "press", "timer", "cloth", "brush", "jar", "lid",
]  # fmt: skip
SEED_STOCK = 1_000_000  # never runs out during a demo: an order is a write, not a business rule test


def init_db(path: str) -> None:
    """Create the schema and seed the products (idempotent)."""
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)
        conn.executemany(
            "INSERT OR IGNORE INTO products (id, name, price_cents, stock) VALUES (?, ?, ?, ?)",
            [(i + 1, name, 250 + 125 * i, SEED_STOCK) for i, name in enumerate(PRODUCTS)],
        )
    conn.close()


def _deny(*_: object) -> int:
    return sqlite3.SQLITE_DENY


class Database:
    """SQLite access with one connection per thread and a span per statement."""

    def __init__(self, path: str, knobs: Knobs) -> None:
        self.path = path
        self.knobs = knobs
        self.dice = Dice(knobs.seed)
        self._local = threading.local()
        self._tracer = trace.get_tracer("demo_app.db_sidecar")
        self._namespace = Path(path).stem if path != ":memory:" else "memory"

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
        return conn

    def execute(self, operation: str, table: str, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run one statement inside its DB span; SQLite errors propagate (and mark the span)."""
        attributes = {
            "db.system": "sqlite",
            "db.system.name": "sqlite",
            "db.statement": sql,
            "db.query.text": sql,
            "db.operation.name": operation,
            "db.collection.name": table,
            "db.namespace": self._namespace,
        }
        conn = self._conn()
        with self._tracer.start_as_current_span(
            f"{operation} {table}", kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            if self.knobs.db_delay_ms:
                time.sleep(self.knobs.db_delay_ms / 1000.0)
            if self.dice.roll(self.knobs.db_error_rate):
                # A real SQLite refusal (prepare fails with "not authorized"), not a made-up exception.
                conn.set_authorizer(_deny)
            try:
                rows = conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                span.set_attribute("error.type", type(exc).__name__)
                span.set_attribute("db.response.status_code", getattr(exc, "sqlite_errorname", "") or "ERROR")
                raise
            finally:
                conn.set_authorizer(None)
            return rows

    @contextmanager
    def transaction(self) -> Iterator[None]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def create_app(db_path: str, knobs: Knobs | None = None) -> Flask:
    knobs = knobs or Knobs.from_env()
    init_db(db_path)
    db = Database(db_path, knobs)
    app = Flask("shop-db")

    def _sidecar_delay() -> None:
        if knobs.sidecar_delay_ms:
            time.sleep(knobs.sidecar_delay_ms / 1000.0)

    @app.errorhandler(sqlite3.Error)
    def _db_failed(exc: sqlite3.Error) -> tuple[Any, int]:
        return jsonify(error="database error", detail=str(exc)), 500

    @app.get("/healthz")
    def healthz() -> tuple[Any, int]:
        return jsonify(status="ok"), 200

    @app.get("/products")
    def list_products() -> Any:
        _sidecar_delay()
        rows = db.execute(
            "SELECT", "products", "SELECT id, name, price_cents, stock FROM products ORDER BY id"
        )
        return jsonify([dict(r) for r in rows])

    @app.get("/products/<int:product_id>")
    def get_product(product_id: int) -> Any:
        _sidecar_delay()
        rows = db.execute(
            "SELECT",
            "products",
            "SELECT id, name, price_cents, stock FROM products WHERE id = ?",
            (product_id,),
        )
        if not rows:
            return jsonify(error=f"no product {product_id}"), 404
        return jsonify(dict(rows[0]))

    @app.post("/orders")
    def create_order() -> Any:
        _sidecar_delay()
        body = request.get_json(silent=True) or {}
        try:
            product_id, quantity = int(body["product_id"]), int(body.get("quantity", 1))
        except (KeyError, TypeError, ValueError):
            return jsonify(error="expected {product_id: int, quantity: int}"), 400
        if quantity < 1:
            return jsonify(error="quantity must be >= 1"), 400
        with db.transaction():
            rows = db.execute(
                "UPDATE",
                "products",
                "UPDATE products SET stock = stock - ? WHERE id = ? AND stock >= ? RETURNING price_cents",
                (quantity, product_id, quantity),
            )
            if not rows:
                return jsonify(error=f"product {product_id} unknown or out of stock"), 409
            total = rows[0]["price_cents"] * quantity
            order = db.execute(
                "INSERT",
                "orders",
                "INSERT INTO orders (product_id, quantity, total_cents) VALUES (?, ?, ?) RETURNING id",
                (product_id, quantity, total),
            )
        return jsonify(id=order[0]["id"], product_id=product_id, quantity=quantity, total_cents=total), 201

    return app

"""Database spans from apps that talk to their database directly, with real SQLite files."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import flask
import pytest
from opentelemetry.trace import SpanKind
from werkzeug.test import Client

import tracekit
from tracekit.tracing import databases, provider


def _tutorial_app(path: Path) -> flask.Flask:
    """Flask's own tutorial style: ``db.execute(...)`` on the connection, plus a cursor and executemany."""
    app = flask.Flask("flaskr")

    def get_db() -> sqlite3.Connection:
        if "db" not in flask.g:
            flask.g.db = sqlite3.connect(path, detect_types=sqlite3.PARSE_DECLTYPES)
            flask.g.db.row_factory = sqlite3.Row
        return flask.g.db

    @app.teardown_appcontext
    def close_db(_exc: BaseException | None) -> None:
        db = flask.g.pop("db", None)
        if db is not None:
            db.close()

    @app.post("/posts")
    def create() -> dict:
        db = get_db()
        db.executemany("INSERT INTO post (title) VALUES (?)", [("a",), ("b",)])
        db.commit()
        return {"ok": True}

    @app.get("/posts/<int:n>")
    def show(n: int) -> dict:
        row = get_db().execute("SELECT id, title FROM post WHERE id = ?", (n,)).fetchone()
        count = get_db().cursor().execute("SELECT count(*) FROM post").fetchone()[0]
        return {"title": row["title"], "count": count}

    return app


def _schema(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE post (id INTEGER PRIMARY KEY, title TEXT NOT NULL)")


def test_connection_execute_and_cursor_both_give_db_spans(memory, tmp_path: Path) -> None:
    tp, exporter = memory
    db_path = tmp_path / "flaskr.sqlite"
    _schema(db_path)
    app = tracekit.instrument(_tutorial_app(db_path), tracer_provider=tp, k8s="off")
    assert "sqlite3" in provider.current().databases
    client = Client(app)
    assert client.post("/posts").json == {"ok": True}
    assert client.get("/posts/2?title=hunter2").json == {"title": "b", "count": 2}
    spans = exporter.get_finished_spans()
    server = {s.name: s for s in spans if s.kind == SpanKind.SERVER}
    db = [s for s in spans if s.attributes.get("db.system") == "sqlite"]
    statements = [s.attributes.get("db.statement") for s in db]
    assert statements == [
        "INSERT INTO post (title) VALUES (?)",  # connection.executemany
        "SELECT id, title FROM post WHERE id = ?",  # connection.execute, the tutorial's way
        "SELECT count(*) FROM post",  # cursor().execute
    ]
    assert all(s.kind == SpanKind.CLIENT for s in db)
    assert db[0].parent.span_id == server["POST /posts"].context.span_id
    assert {s.parent.span_id for s in db[1:]} == {server["GET /posts/<int:n>"].context.span_id}
    assert not [k for s in db for k in s.attributes if "parameters" in k]  # values never recorded


def test_each_client_can_be_turned_off(memory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tp, exporter = memory
    monkeypatch.setenv(databases.DISABLED_VAR, "redis, SQLite3")
    db_path = tmp_path / "off.sqlite"
    _schema(db_path)
    app = tracekit.instrument(_tutorial_app(db_path), tracer_provider=tp, k8s="off")
    assert "sqlite3" not in provider.current().databases
    assert Client(app).post("/posts").json == {"ok": True}
    assert [s.kind for s in exporter.get_finished_spans()] == [SpanKind.SERVER]


def test_clients_not_installed_or_out_of_range_are_skipped_quietly(caplog: pytest.LogCaptureFixture) -> None:
    missing = databases.Client("nosuchdb", "nosuchdb_client", "nosuchdb.instrumentation:Nothing")
    assert databases.instrument(None, [missing]) == ()
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]


APP = textwrap.dedent("""
    import sqlite3, threading
    import flask, requests
    from werkzeug.serving import make_server
    import tracekit

    app = flask.Flask("blog")
    tracekit.instrument(app, service_name="blog")

    @app.get("/posts")
    def posts():
        db = sqlite3.connect("blog.sqlite")
        rows = db.execute("SELECT title FROM post ORDER BY id").fetchall()
        db.close()
        return {"titles": [r[0] for r in rows]}

    db = sqlite3.connect("blog.sqlite")
    db.execute("CREATE TABLE post (id INTEGER PRIMARY KEY, title TEXT)")
    db.executemany("INSERT INTO post (title) VALUES (?)", [("first",), ("second",)])
    db.commit()
    db.close()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for _ in range(3):
        got = requests.get(f"http://127.0.0.1:{server.server_port}/posts").json()
        assert got["titles"] == ["first", "second"], got
    server.shutdown()
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_sqlite3_app_shows_a_db_layer_in_analyze(tmp_path: Path) -> None:
    """The whole way: app -> OTLP -> ``tracekit collect`` -> file -> ``tracekit analyze``."""
    tk = str(Path(sys.executable).parent / "tracekit")
    port = _free_port()
    out = tmp_path / "traces.jsonl"
    argv = [tk, "collect", "--listen", f"127.0.0.1:{port}", "--grpc-listen", "none", "--out", str(out)]
    collect = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline and collect.poll() is None, collect.communicate()
                time.sleep(0.05)
        (tmp_path / "app.py").write_text(APP)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACEKIT_"))}
        env.update({"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}", "TRACEKIT_K8S": "off"})
        app = subprocess.run(
            [sys.executable, "app.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )
        assert app.returncode == 0, app.stderr[-3000:]
    finally:
        collect.send_signal(signal.SIGTERM)
        collect.communicate(timeout=30)
    report = subprocess.run([tk, "analyze", "--format", "json", str(out)], capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert report.returncode == 0, report.stderr[-3000:]
    requests_ = [
        t for t in json.loads(report.stdout)["traces"] if any(h["name"] == "GET /posts" for h in t["hops"])
    ]
    assert len(requests_) == 3, report.stdout[:3000]
    # Each request's time is split into layers, and the statement's share is the db layer's.
    assert all(t["layers"].get("db", 0) > 0 for t in requests_), [t["layers"] for t in requests_]


def test_sqlalchemy_engines_give_db_spans(memory, tmp_path: Path) -> None:
    """SQLAlchemy in the instrumentation's supported range: its own statement spans, under the request."""
    sqlalchemy = pytest.importorskip("sqlalchemy")
    tp, exporter = memory
    app = flask.Flask("orm")

    @app.get("/n")
    def count() -> dict:
        with engine.connect() as conn:
            return {"n": conn.execute(sqlalchemy.text("SELECT 41 + 1")).scalar()}

    tracekit.instrument(app, tracer_provider=tp, k8s="off")
    assert "sqlalchemy" in provider.current().databases
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'orm.sqlite'}")
    assert Client(app).get("/n").json == {"n": 42}
    spans = exporter.get_finished_spans()
    server = next(s for s in spans if s.kind == SpanKind.SERVER)
    orm = [
        s for s in spans if s.attributes.get("db.statement") == "SELECT 41 + 1" and "db.name" in s.attributes
    ]
    assert len(orm) == 1 and orm[0].kind == SpanKind.CLIENT
    assert orm[0].parent.span_id == server.context.span_id

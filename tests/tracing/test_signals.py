"""The way out, with real servers, real signals and a real OTLP receiver: no span lost, no signal swallowed.

Each app gets N requests and a signal right after. The batch delay is long (60 s), so every span the
receiver holds was sent by the flush on the way out. Exit statuses are the ones the same process has
without tracekit: the default action kills with the signal (-15), a chained handler decides itself.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.tracing.otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.slow

N = 30
SERVER_KIND = 2  # SPAN_KIND_SERVER in OTLP

APP = textwrap.dedent("""
    import logging, os, signal, sys
    import flask
    import tracekit
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind

    logging.basicConfig(level=logging.INFO)

    app = flask.Flask("shutdown")

    @app.get("/items/<int:n>")
    def item(n):
        return {"n": n}

    if os.environ.get("APP_OWN_HANDLER"):  # the app's own SIGTERM handler, installed before tracekit
        def own(signum, frame):
            print("own handler ran", flush=True)
            sys.exit(3)
        signal.signal(signal.SIGTERM, own)

    tracekit.instrument(app, service_name="shutdown")

    if __name__ == "__main__":
        kind, port = sys.argv[1], int(sys.argv[2])
        if kind == "waitress":
            import waitress
            waitress.serve(app, host="127.0.0.1", port=port, threads=4)
        elif kind == "werkzeug":
            app.run(host="127.0.0.1", port=port)
        elif kind == "script":  # no server: spans from a plain loop, then wait to be stopped
            tracer = trace.get_tracer("script")
            for i in range(int(os.environ["SCRIPT_SPANS"])):
                with tracer.start_as_current_span(f"work {i}", kind=SpanKind.SERVER):
                    pass
            print("ready", flush=True)
            while True:
                signal.pause()
""")


_STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_leftovers() -> Iterator[None]:
    """A failed test must not leave its server (and the server's workers) running."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _popen(argv: list[str], **kw: Any) -> subprocess.Popen:
    proc = subprocess.Popen(argv, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)  # fmt: skip
    _STARTED.append(proc)
    return proc


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(endpoint: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACEKIT_"))}
    env.update(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "60000",
            "TRACEKIT_K8S": "off",
            "PYTHONUNBUFFERED": "1",
            **extra,
        }
    )
    return env


def _wait_listening(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


def _serve(tmp_path: Path, argv: list[str], env: dict[str, str], port: int) -> subprocess.Popen:
    (tmp_path / "app.py").write_text(APP)
    proc = _popen(argv, cwd=tmp_path, env=env)
    _wait_listening(port, proc)
    return proc


def _requests(port: int, n: int = N) -> None:
    # A connection per request: uwsgi's HTTP router closes each one after its answer.
    for i in range(n):
        # The timeout only guards the suite: a worker still importing on a loaded machine is slow.
        assert requests.get(f"http://127.0.0.1:{port}/items/{i}", timeout=60).json() == {"n": i}


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30.0) -> tuple[int, str, str]:
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


@pytest.mark.parametrize("kind", ["waitress", "werkzeug"])
def test_sigterm_right_after_requests_loses_no_span(tmp_path: Path, kind: str) -> None:
    port = _free_port()
    with OtlpReceiver() as receiver:
        proc = _serve(tmp_path, [sys.executable, "app.py", kind, str(port)], _env(receiver.endpoint), port)
        _requests(port)
        code, _, err = _stop(proc)
        spans = receiver.wait_spans(N)
    assert code == -signal.SIGTERM, err[-3000:]  # the default action, as without tracekit
    assert len([s for s in spans if s["kind"] == SERVER_KIND]) == N, err[-3000:]
    assert f"{N} exported, 0 dropped" in err


@pytest.mark.parametrize("preload", [False, True])
def test_sigterm_under_gunicorn_loses_no_span(tmp_path: Path, preload: bool) -> None:
    """Workers chain gunicorn's graceful stop; with --preload (tracekit set up before the fork, the
    workers' handlers replace ours) the exit flush in each worker does it."""
    port = _free_port()
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    argv = [gunicorn, "-w", "2", "-b", f"127.0.0.1:{port}", "--graceful-timeout", "30", "app:app"]
    if preload:
        argv.insert(1, "--preload")
    with OtlpReceiver() as receiver:
        proc = _serve(tmp_path, argv, _env(receiver.endpoint), port)
        _requests(port)
        code, _, err = _stop(proc)
        spans = receiver.wait_spans(N)
    assert code == 0, err[-3000:]
    assert len([s for s in spans if s["kind"] == SERVER_KIND]) == N, err[-3000:]


def test_plain_script_sigint_and_sigterm(tmp_path: Path) -> None:
    for sig, expected in ((signal.SIGTERM, -signal.SIGTERM), (signal.SIGINT, -signal.SIGINT)):
        with OtlpReceiver() as receiver:
            proc = _script(tmp_path, _env(receiver.endpoint, SCRIPT_SPANS="25"))
            code, _, err = _stop(proc, sig)
            spans = receiver.wait_spans(25)
        # SIGINT: Python's own handler raises KeyboardInterrupt, which ends the process with SIGINT.
        assert code == expected, err[-3000:]
        assert len(spans) == 25, err[-3000:]


def _script(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen:
    (tmp_path / "app.py").write_text(APP)
    proc = _popen([sys.executable, "app.py", "script", "0"], cwd=tmp_path, env=env)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", proc.communicate()
    return proc


@pytest.mark.parametrize("traced", [False, True])
def test_the_apps_own_handler_is_chained(tmp_path: Path, traced: bool) -> None:
    """The same exit with and without tracekit: the app's handler runs and decides the status."""
    with OtlpReceiver() as receiver:
        env = _env(receiver.endpoint, APP_OWN_HANDLER="1", SCRIPT_SPANS="25")
        if not traced:
            env["OTEL_SDK_DISABLED"] = "true"
        proc = _script(tmp_path, env)
        code, out, err = _stop(proc)
        spans = receiver.wait_spans(25 if traced else 0, timeout=10 if traced else 0)
    assert code == 3 and out.strip() == "own handler ran", (code, out, err[-3000:])
    assert len(spans) == (25 if traced else 0)


def test_hung_collector_under_gunicorn_exits_within_the_bound(tmp_path: Path, blackhole) -> None:
    """Several batches queued for a collector that never answers: the worker still stops in time."""
    endpoint, connected = blackhole
    port = _free_port()
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    argv = [gunicorn, "-w", "1", "-b", f"127.0.0.1:{port}", "--graceful-timeout", "120", "app:app"]
    env = _env(
        endpoint,
        TRACEKIT_SHUTDOWN_TIMEOUT="2",
        OTEL_EXPORTER_OTLP_TIMEOUT="100",
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE="5",
        OTEL_BSP_SCHEDULE_DELAY="100",
    )
    proc = _serve(tmp_path, argv, env, port)
    _requests(port, 5)
    assert connected.wait(10), "the first batch should be stuck at the silent collector"
    _requests(port, 20)  # four more batches queue up behind it
    # Without the bound: 100 s per batch, then gunicorn's 120 s graceful timeout. The wait is a guard.
    code, _, err = _stop(proc, timeout=60)
    assert code == 0, err[-3000:]
    assert "span export stopped" in err and "0 exported" in err, err[-3000:]


def _uwsgi() -> str:
    found = os.environ.get("UWSGI") or shutil.which("uwsgi")
    if not found:
        pytest.skip("uwsgi is not installed (it builds from source: pip install uwsgi; or set UWSGI=path)")
    return found


@pytest.mark.parametrize("lazy", [False, True])
def test_sigterm_under_uwsgi_loses_no_span(tmp_path: Path, lazy: bool) -> None:
    """uwsgi's handlers are not Python's (left alone), its workers are forked in C (no Python fork
    hooks: the processor notices the new pid), and it runs the exit hooks when a worker ends."""
    port = _free_port()
    site = str(Path(_uwsgi()).parent.parent)  # a --target install keeps uwsgidecorators next to bin/
    argv = [_uwsgi(), "--http", f"127.0.0.1:{port}", "--wsgi-file", "app.py", "--callable", "app", "--master",
            "--processes", "1", "--die-on-term", "--virtualenv", str(Path(sys.executable).parent.parent),
            "--pythonpath", site]  # fmt: skip
    if lazy:
        argv.append("--lazy-apps")
    with OtlpReceiver() as receiver:
        proc = _serve(tmp_path, argv, _env(receiver.endpoint), port)
        deadline = time.monotonic() + 60  # uwsgi's router listens before the worker has the app
        while not _answers(port):
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()[1][-3000:]
            time.sleep(0.2)
        _requests(port)
        code, _, err = _stop(proc)
        spans = receiver.wait_spans(N + 1)
    assert code == 0, err[-3000:]
    assert len([s for s in spans if s["kind"] == SERVER_KIND]) == N + 1  # with the readiness request


def _answers(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/items/0", timeout=60).ok
    except requests.ConnectionError:
        return False

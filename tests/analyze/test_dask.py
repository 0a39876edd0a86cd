"""The partitioned analysis on a real Dask cluster: a scheduler and two worker processes on loopback.

The report must be the one this process makes, byte for byte, through the library and through the
CLI (``--scheduler`` and ``DASK_SCHEDULER_ADDRESS``); a scheduler that is not there is one line.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.analyze.truth import request_trace, to_jaeger, to_otlp_lines
from tracekit.analyze.executors import DaskExecutor, InProcess
from tracekit.analyze.run import Request, execute, write_json

distributed = pytest.importorskip("distributed")

#: Each CLI run starts a Dask client (about a second on a quiet machine, far more on a busy one).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """A local cluster with worker *processes* (as a real cluster: tasks and results are pickled)."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0", host="127.0.0.1"
    ) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    tmp = tmp_path_factory.mktemp("dask")
    traces = [
        request_trace(
            n,
            failure="db" if n % 9 == 0 else None,
            fanout=0 if n % 3 == 0 else 2 + n % 2,
            follows_from=n % 5 == 1,
        )
        for n in range(1, 61)
    ]
    otlp = tmp / "traces.jsonl"
    otlp.write_text(to_otlp_lines([s for b in traces[:40] for s in b.spans], per_line=3))
    jaeger = tmp / "jaeger.json"
    jaeger.write_text(json.dumps(to_jaeger([b.spans for b in traces[40:]])))
    return [otlp, jaeger]


def _report(executor: object, paths: list[Path], tmp: Path, **plan: int) -> bytes:
    storage = tmp / f"storage-{len(list(tmp.iterdir()))}"
    storage.mkdir()
    request = Request(
        [str(p) for p in paths], chunk_bytes=plan.get("chunk"), partitions=plan.get("partitions")
    )
    out = io.BytesIO()
    write_json(out, execute(request, executor, str(storage)))
    return out.getvalue()


def test_cluster_report_is_the_in_process_report(scheduler: str, inputs: list[Path], tmp_path: Path) -> None:
    reference = _report(InProcess(), inputs, tmp_path)
    executor = DaskExecutor(scheduler)
    try:
        assert executor.workers == 2
        # Small ranges and several partitions: map and reduce tasks spread over both workers.
        report = _report(executor, inputs, tmp_path, chunk=2000, partitions=5)
        who = executor.client.run(os.getpid)
    finally:
        executor.close()
    assert report == reference
    assert len(set(who.values())) == 2 and os.getpid() not in who.values()  # two other processes
    assert json.loads(report)["summary"]["traces"] == 60


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracekit", "analyze", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )


def test_cli_on_the_cluster(scheduler: str, inputs: list[Path], tmp_path: Path) -> None:
    files = [str(p) for p in inputs]
    local = _cli(*files, "--format", "json", "--jobs", "1")
    assert local.returncode == 0, local.stderr
    on_cluster = _cli(*files, "--format", "json", "--scheduler", scheduler)
    assert (on_cluster.returncode, on_cluster.stdout, on_cluster.stderr) == (0, local.stdout, local.stderr)
    # Dask's own variable names the scheduler too; the text report goes through the same plan.
    env = dict(os.environ, DASK_SCHEDULER_ADDRESS=scheduler)
    text_local = _cli(*files, "--slowest", "3", "--jobs", "1")
    text_cluster = _cli(*files, "--slowest", "3", env=env)
    assert text_cluster.returncode == 0, text_cluster.stderr
    assert text_cluster.stdout == text_local.stdout
    # Nothing is left behind in the work directory.
    work = tmp_path / "work"
    work.mkdir()
    done = _cli(*files, "--format", "json", "--scheduler", scheduler, "--work-dir", str(work))
    assert done.returncode == 0 and done.stdout == local.stdout
    assert list(work.iterdir()) == []


def test_unreachable_scheduler_is_one_line(inputs: list[Path]) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = _cli(str(inputs[0]), "--scheduler", f"tcp://127.0.0.1:{port}")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tracekit analyze: error: --scheduler tcp://127.0.0.1:")
    assert "cannot connect" in lines[0]

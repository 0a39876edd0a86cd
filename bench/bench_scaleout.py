"""The partitioned analysis side by side: one process, a local pool, a Dask cluster, a peer.

Input: 1,000,000 spans (100,000 traces of 10) as Collector OTLP JSON lines with realistic resource
attributes (``bench/tracegen.py`` ``rich_resources``: process, runtime, host, container, cloud and
workload labels, about 1.1 KB of file per span; 64 spans per line). Printed, in one run:

- a plain single-core orjson decode of every line (the floor any Python analyzer pays);
- ``tracekit analyze --format json`` with ``--jobs 1`` (this process), ``--jobs 2`` (a local pool)
  and ``--scheduler`` on a local Dask cluster (``dask scheduler`` + two single-threaded
  ``dask worker`` processes on loopback, started before the timing): wall and CPU seconds, peak RSS
  of the largest process (Dask workers: their ``VmHWM``), and whether the three reports are the same
  bytes;
- the ratios the goals are stated in: analyze (local pool, the default for this size) / decode
  (goal <= 2.0), Dask / local pool (<= 1.3), speed-up from 1 to 2 workers (>= 1.7), peak RSS per
  process for this ~1 GB input (< 1 GB), and the same for a ~1 GB Jaeger query-API document on one
  line and a ~1.2 GB Zipkin v2 span array of the same traces (read element by element;
  ``TRACEKIT_BENCH_DOC_MB`` sets the Jaeger size), in one process and in a local pool;
- tracekit against CRISP (``../shared/peers/crisp``) on the same 19,000 Jaeger traces, two cores:
  CRISP with ``--parallelism 2`` on one file per trace, tracekit's text report on one document
  (goal: tracekit at least 6x faster).

Wall figures move with whatever else the machine runs: the load average is printed before and after.
``TRACEKIT_BENCH_TRACES`` shrinks the input; ``TRACEKIT_BENCH_NO_CRISP=1`` skips the peer.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_analyze import digest, measure
from bench.tracegen import cached_otlp_jsonl, write_documents

SPANS_PER_TRACE = 10
CRISP_TRACES = 19_000
#: Runs of each side; the best is compared (as the goal was measured: best of three, quiet machine).
CRISP_RUNS = 3
CRISP_VENV = Path(tempfile.gettempdir()) / "crisp-venv"
PEERS = Path(__file__).resolve().parents[2] / "shared" / "peers"


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min)"


def orjson_decode(path: Path) -> tuple[float, float]:
    """A plain single-core decode of every line with orjson: (wall s, cpu s)."""
    import orjson

    loads = orjson.loads
    wall, cpu = time.perf_counter(), time.process_time()
    with open(path, "rb") as f:
        for line in f:
            loads(line)
    return time.perf_counter() - wall, time.process_time() - cpu


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "tracekit", "analyze", *args]


def _hwm_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


class LocalDask:
    """``dask scheduler`` and two ``dask worker`` processes on loopback (as docs/analyzer.md shows)."""

    def __init__(self, tmp: Path) -> None:
        dask = str(Path(sys.executable).with_name("dask"))
        port = 18786
        self.address = f"tcp://127.0.0.1:{port}"
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        self.scheduler = subprocess.Popen(
            [
                dask,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--dashboard-address",
                "127.0.0.1:0",
            ],
            **quiet,  # type: ignore[arg-type]
        )
        self.workers = [
            subprocess.Popen(
                [
                    dask,
                    "worker",
                    self.address,
                    "--nthreads",
                    "1",
                    "--name",
                    f"w{i}",
                    "--local-directory",
                    str(tmp / f"w{i}"),
                    "--dashboard-address",
                    "127.0.0.1:0",
                    "--memory-limit",
                    "0",
                ],
                **quiet,  # type: ignore[arg-type]
            )
            for i in range(2)
        ]
        from distributed import Client

        with Client(self.address, timeout=120) as client:
            client.wait_for_workers(2, timeout=300)
            self.worker_pids = list(client.run(os.getpid).values())

    def peak_rss_mb(self) -> float:
        return max(_hwm_kb(pid) for pid in self.worker_pids) / 1024

    def close(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            proc.terminate()
        for proc in [*self.workers, self.scheduler]:
            proc.wait(timeout=60)


def whole_documents(tmp: Path, target_mb: int) -> dict[str, Path]:
    """A Jaeger query-API document on one line (about ``target_mb`` MB) and a Zipkin v2 span array
    of the same traces (about 1.2 times that; its spans in the order they ended, so each trace is
    spread over the document), written as they are generated."""
    n = max(1000, target_mb * 1_000_000 // 14_800)  # about 14.8 KB of Jaeger JSON per 10-span trace
    paths = write_documents(tmp, n, SPANS_PER_TRACE)
    for name in ("jaeger-lines", "zipkin-lines"):
        paths.pop(name).unlink()
    return paths


def crisp_inputs(tmp: Path) -> tuple[Path, Path, int]:
    """The same traces as one Jaeger document (tracekit) and one file per trace (CRISP), every root
    renamed ``GET`` (CRISP analyses one root operation)."""
    # Lean resources, as the demo writes them (the peer comparison is about the analysis, not decoding).
    src = cached_otlp_jsonl(CRISP_TRACES, 6)
    doc_path = tmp / "crisp-all.json"
    subprocess.run(cli(str(src), "--format", "jaeger", "-o", str(doc_path)), check=True)
    doc = json.loads(doc_path.read_bytes())
    spans = 0
    per_trace = tmp / "crisp-traces"
    per_trace.mkdir()
    for trace in doc["data"]:
        for sp in trace["spans"]:
            if not sp.get("references"):
                sp["operationName"] = "GET"
        spans += len(trace["spans"])
        (per_trace / f"{trace['traceID']}.json").write_text(json.dumps({"data": [trace]}))
    doc_path.write_text(json.dumps(doc))
    return doc_path, per_trace, spans


def main() -> None:
    n_traces = int(os.environ.get("TRACEKIT_BENCH_TRACES", "100000"))
    path = cached_otlp_jsonl(n_traces, SPANS_PER_TRACE, batch_spans=64, rich_resources=True)
    spans = n_traces * SPANS_PER_TRACE
    size = path.stat().st_size
    print(f"input: {path} ({size / 1e6:,.0f} MB, {spans:,} spans, {size / spans:,.0f} bytes/span)")
    print(f"before: {load()}, {os.cpu_count()} CPUs")
    d1 = orjson_decode(path)
    runs: dict[str, tuple[float, float, float, str]] = {}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        for label, extra in (("jobs 1", ["--jobs", "1"]), ("local pool, 2 workers", ["--jobs", "2"])):
            out = tmp / "report.json"
            wall, cpu, rss = measure(cli(str(path), "--format", "json", "-o", str(out), *extra))
            runs[label] = (wall, cpu, rss, digest(out))
        cluster = LocalDask(tmp)
        try:
            out = tmp / "report.json"
            wall, cpu, rss = measure(
                cli(str(path), "--format", "json", "-o", str(out), "--scheduler", cluster.address)
            )
            runs["Dask, 2 workers"] = (wall, cpu, max(rss, cluster.peak_rss_mb()), digest(out))
        finally:
            cluster.close()
        d2 = orjson_decode(path)
        decode_wall, decode_cpu = min(d1[0], d2[0]), min(d1[1], d2[1])
        print(f"orjson decode, one core: {decode_wall:.2f} s wall, {decode_cpu:.2f} s cpu")
        for label, (wall, cpu, rss, _) in runs.items():
            print(
                f"analyze --format json, {label}: {wall:.2f} s wall, {cpu:.2f} s cpu (all processes), "
                f"peak RSS {rss:,.0f} MB, {spans / wall:,.0f} spans/s"
            )
        pool, one, dask = runs["local pool, 2 workers"], runs["jobs 1"], runs["Dask, 2 workers"]
        print(f"analyze (local pool) / orjson decode: {pool[0] / decode_wall:.2f} wall   goal <= 2.0")
        print(f"Dask two workers / local pool: {dask[0] / pool[0]:.2f} wall   goal <= 1.3")
        print(f"speed-up 1 -> 2 workers: {one[0] / pool[0]:.2f}x wall   goal >= 1.7x")
        print(
            f"peak RSS per process, {size / 1e9:.2f} GB OTLP input: "
            f"{max(r[2] for r in runs.values()):,.0f} MB   goal < 1,024 MB"
        )
        same = len({r[3] for r in runs.values()}) == 1
        print(f"reports identical across executors: {'yes' if same else 'NO'}")
        doc_mb = int(os.environ.get("TRACEKIT_BENCH_DOC_MB", "1000"))
        for fmt, doc in whole_documents(tmp, doc_mb).items():
            doc_size = doc.stat().st_size
            for jobs in ("1", "2"):
                out = tmp / "doc-report.json"
                wall, _, rss = measure(cli(str(doc), "--format", "json", "-o", str(out), "--jobs", jobs))
                print(
                    f"{fmt} document (read element by element), {doc_size / 1e9:.2f} GB, --jobs {jobs}: "
                    f"peak RSS per process {rss:,.0f} MB ({rss * 1e6 / doc_size:.2f} bytes per input byte)"
                    f"   goal < 1,024 MB; {wall:.1f} s wall ({load()})"
                )
            doc.unlink()
        if os.environ.get("TRACEKIT_BENCH_NO_CRISP"):
            print(f"after: {load()}")
            return
        crisp = CRISP_VENV / "bin" / "crisp-trace"
        if not crisp.exists():
            print(
                f"CRISP: not installed ({crisp}); see {PEERS / 'README.md'}: python3 -m venv {CRISP_VENV} "
                f"&& {CRISP_VENV}/bin/pip install {PEERS / 'crisp'} psutil jinja2 matplotlib"
            )
            print(f"after: {load()}")
            return
        doc_path, per_trace, crisp_spans = crisp_inputs(tmp)
        ours = []
        theirs = []
        for _ in range(CRISP_RUNS):
            ours.append(measure(cli(str(doc_path), "-o", str(tmp / "crisp-report.txt")))[0])
            run_dir = tmp / f"crisp-run-{len(theirs)}"
            shutil.copytree(per_trace, run_dir)
            started = time.perf_counter()
            subprocess.run(
                [str(crisp), "-a", "GET", "-s", "loadgen", "-i", str(run_dir), "--parallelism", "2"],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=run_dir,
            )
            theirs.append(time.perf_counter() - started)
        print(
            f"CRISP vs tracekit, {CRISP_TRACES:,} Jaeger traces ({crisp_spans:,} spans), best of "
            f"{CRISP_RUNS}: CRISP --parallelism 2 {min(theirs):.2f} s, tracekit text report "
            f"{min(ours):.2f} s: tracekit {min(theirs) / min(ours):.2f}x faster   goal >= 6x"
            f"   (runs: CRISP {', '.join(f'{t:.2f}' for t in theirs)} s; "
            f"tracekit {', '.join(f'{t:.2f}' for t in ours)} s)"
        )
    print(f"after: {load()}")


if __name__ == "__main__":
    main()

"""Generate large OTLP JSONL files the way an OpenTelemetry Collector's file exporter writes them.

Each line is one ``ExportTraceServiceRequest`` holding a batch of spans that *ended* around the same
time, from many traces, grouped by resource (service) as the batch processor groups them. A trace's
spans therefore spread over several consecutive lines and its root (which ends last) comes last.

Shape of each trace (tracekit's demo journey): ``loadgen`` CLIENT root -> ``ingress`` SERVER ->
``ingress`` CLIENT -> ``shop`` app SERVER -> N x (app CLIENT -> ``shop-db`` sidecar SERVER -> sqlite
CLIENT), the rest app INTERNAL spans. One trace in 100 fails in the database.

Pods: the ``shop`` app and its ``shop-db`` sidecar are two containers of one pod (same pod name and
uid), ``SHOP_REPLICAS`` such pods; the ingress controller runs ``INGRESS_REPLICAS`` pods of its own in
the ``ingress-nginx`` namespace; the load generator runs outside the cluster (no k8s attributes).
Every pod has its own uid, as in a real cluster (the analyzer tells hops apart by pod).

Used by ``bench/bench_readers.py`` and the analyzer bench; cached files live in /tmp keyed by
``VERSION`` and the parameters, so several benches share one file.
"""

from __future__ import annotations

import heapq
import os
import random
import tempfile
import uuid
from pathlib import Path
from typing import Any

import msgspec

#: Bump when the generated content changes, so cached files are regenerated.
#: 3: each pod has its own k8s.pod.uid (the ingress and shop pods used to share one).
VERSION = 3

#: Replicas of the shop Deployment (app + db sidecar per pod) and of the ingress controller.
SHOP_REPLICAS = 8
INGRESS_REPLICAS = 2

_RESOURCES: dict[tuple[str, int, bool], dict[str, Any]] = {}


def _kv(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    if isinstance(value, list):
        return {"key": key, "value": {"arrayValue": {"values": [{"stringValue": v} for v in value]}}}
    return {"key": key, "value": {"stringValue": value}}


def _pod_uid(workload: str, index: int) -> str:
    """A stable, distinct uid per pod (a UUID4 drawn from a seed naming the pod)."""
    return str(uuid.UUID(int=random.Random(f"{workload}/{index}").getrandbits(128), version=4))


def _resource(service: str, pod: int, rich: bool = False) -> dict[str, Any]:
    """The resource of ``service``'s ``pod``-th replica (built once per pod, then reused).

    ``rich``: what an SDK's resource detectors plus the Collector's k8sattributes and
    resourcedetection processors attach in a real cluster (process, runtime, host, OS, container,
    cloud, workload labels): about 1.2 KB of OTLP JSON per resource instead of about 400 bytes.
    """
    cached = _RESOURCES.get((service, pod, rich))
    if cached is not None:
        return cached
    attrs: dict[str, Any] = {
        "service.name": service,
        "telemetry.sdk.language": "python",
        "telemetry.sdk.name": "opentelemetry",
    }
    if service == "ingress":
        attrs |= {
            "k8s.namespace.name": "ingress-nginx",
            "k8s.pod.name": f"ingress-nginx-controller-7d9c6b5f4-{pod:05x}",
            "k8s.pod.uid": _pod_uid("ingress-nginx-controller", pod),
            "k8s.node.name": f"node-{(pod + 1) % 3}",
            "k8s.container.name": "controller",
        }
    elif service != "loadgen":  # shop and shop-db: the app and sidecar containers of one shop pod
        attrs |= {
            "k8s.namespace.name": "shop",
            "k8s.pod.name": f"shop-5f7b8c9d6-{pod:05x}",
            "k8s.pod.uid": _pod_uid("shop", pod),
            "k8s.node.name": f"node-{pod % 3}",
            "k8s.container.name": "app" if service == "shop" else "db",
        }
    if rich:
        container_id = uuid.UUID(int=random.Random(f"{service}/{pod}").getrandbits(128)).hex * 2
        attrs |= {
            "service.version": "1.14.2",
            "service.namespace": "shop",
            "service.instance.id": str(uuid.UUID(int=random.Random(f"{service}:{pod}").getrandbits(128))),
            "deployment.environment.name": "production",
            "telemetry.sdk.version": "1.38.0",
            "telemetry.auto.version": "0.59b0",
            "process.pid": 1,
            "process.executable.path": "/usr/local/bin/python3.12",
            "process.command_args": [
                "/usr/local/bin/python3.12",
                "-m",
                "gunicorn",
                "-c",
                "/etc/app/gunicorn.py",
            ],
            "process.runtime.name": "cpython",
            "process.runtime.version": "3.12.7",
            "process.runtime.description": "3.12.7 (main, Oct 19 2024, 04:07:52) [GCC 12.2.0]",
            "host.arch": "amd64",
            "os.type": "linux",
            "os.description": "Debian GNU/Linux 12 (bookworm) 6.1.0-26-cloud-amd64",
            "container.id": container_id,
            "container.image.name": f"registry.example.com/shop/{service}",
            "container.image.tags": ["1.14.2"],
            "cloud.provider": "aws",
            "cloud.platform": "aws_eks",
            "cloud.region": "eu-west-1",
            "cloud.availability_zone": f"eu-west-1{'abc'[pod % 3]}",
            "k8s.cluster.name": "prod-eu-west-1",
            "k8s.deployment.name": service,
            "k8s.pod.label.app.kubernetes.io/name": service,
            "k8s.pod.label.pod-template-hash": "5f7b8c9d6",
        }
    resource = {"attributes": [_kv(k, v) for k, v in attrs.items()]}
    _RESOURCES[(service, pod, rich)] = resource
    return resource


def _trace_spans(rng: random.Random, trace_no: int, start: int, n: int) -> list[tuple[int, str, int, dict]]:
    """Spans of one trace as (end_ns, service, pod, otlp span dict), root first."""
    tid = f"{rng.getrandbits(128):032x}"
    ids = [f"{rng.getrandbits(64):016x}" for _ in range(n)]
    failed = trace_no % 100 == 7
    shop_pod = trace_no % SHOP_REPLICAS
    pods = {"loadgen": 0, "ingress": trace_no % INGRESS_REPLICAS, "shop": shop_pod, "shop-db": shop_pod}
    out: list[tuple[int, str, int, dict]] = []

    def span(
        i: int, parent: int | None, service: str, name: str, kind: int, t0: int, t1: int, attrs: dict
    ) -> None:
        d: dict[str, Any] = {
            "traceId": tid,
            "spanId": ids[i],
            "name": name,
            "kind": kind,
            "startTimeUnixNano": str(t0),
            "endTimeUnixNano": str(t1),
        }
        if attrs:
            d["attributes"] = [_kv(k, v) for k, v in attrs.items() if k != "error"]
        if failed and attrs.get("error"):
            d["status"] = {"code": 2, "message": "database is locked"}
        if parent is not None:
            d["parentSpanId"] = ids[parent]
        out.append((t1, service, pods[service], d))

    us = 1000
    db_calls = max(0, (n - 4) // 3)
    internal = n - 4 - 3 * db_calls
    total = 2000 * us + db_calls * 900 * us + internal * 100 * us + rng.randrange(0, 3000 * us)
    t_ingress = start + 300 * us
    t_app = t_ingress + 400 * us
    app_end = start + total - 500 * us
    status = 500 if failed else 200
    route = ("/cart", "/checkout", "/products")[trace_no % 3]
    # Attributes: the few the analyzer looks at (a lean span, as the decode target assumes).
    span(
        0,
        None,
        "loadgen",
        f"GET {route}",
        3,
        start,
        start + total,
        {"http.response.status_code": status, "error": failed},
    )
    span(
        1,
        0,
        "ingress",
        f"GET {route}",
        2,
        t_ingress - 200 * us,
        start + total - 100 * us,
        {"http.route": route, "http.response.status_code": status, "tracekit.component": "ingress"},
    )
    span(
        2,
        1,
        "ingress",
        "upstream",
        3,
        t_ingress,
        start + total - 200 * us,
        {"server.address": "web-service", "http.response.status_code": status},
    )
    span(
        3,
        2,
        "shop",
        f"GET {route}",
        2,
        t_app,
        app_end,
        {"http.route": route, "http.response.status_code": status, "error": failed},
    )
    t = t_app + 100 * us
    i = 4
    for c in range(db_calls):
        last = failed and c == db_calls - 1
        span(i, 3, "shop", "POST /query", 3, t, t + 800 * us, {"server.address": "127.0.0.1"})
        span(
            i + 1,
            i,
            "shop-db",
            "POST /query",
            2,
            t + 50 * us,
            t + 750 * us,
            {"http.route": "/query", "error": last},
        )
        span(
            i + 2,
            i + 1,
            "shop-db",
            "SELECT shop.items",
            3,
            t + 100 * us,
            t + 700 * us,
            {"db.system.name": "sqlite", "error": last},
        )
        t += 900 * us
        i += 3
    for _ in range(internal):
        span(i, 3, "shop", "render", 1, t, t + 80 * us, {})
        t += 100 * us
        i += 1
    return out


def _line(batch: list[tuple[int, str, int, dict]], rich: bool = False) -> bytes:
    by_res: dict[tuple[str, int], list[dict]] = {}
    for _, service, pod, d in batch:
        by_res.setdefault((service, pod), []).append(d)
    resource_spans = []
    for (service, pod), spans in by_res.items():
        resource_spans.append(
            {
                "resource": _resource(service, pod, rich),
                "scopeSpans": [{"scope": {"name": "opentelemetry.instrumentation.flask"}, "spans": spans}],
            }
        )
    return msgspec.json.encode({"resourceSpans": resource_spans}) + b"\n"


def write_otlp_jsonl(
    path: str | os.PathLike[str],
    n_traces: int,
    spans_per_trace: int = 10,
    *,
    batch_spans: int = 1000,
    traces_per_second: int = 2000,
    seed: int = 1,
    rich_resources: bool = False,
) -> int:
    """Write ``n_traces`` traces as Collector-style OTLP JSONL to ``path``; return the span count.

    Spans are written in end-time order in batches of ``batch_spans`` per line, so with
    ``traces_per_second`` arrivals and traces lasting a few ms to tens of ms, each trace's spans
    spread over several lines interleaved with other traces.
    """
    rng = random.Random(seed)
    heap: list[tuple[int, int, str, int, dict]] = []
    seq = 0
    written = 0
    gap = 1_000_000_000 // traces_per_second
    t0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
    batch: list[tuple[int, str, int, dict]] = []
    with open(path, "wb") as f:
        for n in range(n_traces):
            start = t0 + n * gap
            while heap and heap[0][0] <= start:
                end, _, service, pod, d = heapq.heappop(heap)
                batch.append((end, service, pod, d))
                if len(batch) >= batch_spans:
                    f.write(_line(batch, rich_resources))
                    written += len(batch)
                    batch = []
            for end, service, pod, d in _trace_spans(rng, n, start, spans_per_trace):
                heapq.heappush(heap, (end, seq, service, pod, d))
                seq += 1
        while heap:
            end, _, service, pod, d = heapq.heappop(heap)
            batch.append((end, service, pod, d))
            if len(batch) >= batch_spans:
                f.write(_line(batch, rich_resources))
                written += len(batch)
                batch = []
        if batch:
            f.write(_line(batch, rich_resources))
            written += len(batch)
    return written


def cached_otlp_jsonl(n_traces: int = 100_000, spans_per_trace: int = 10, **kw: Any) -> Path:
    """Path of a generated file in the temp dir, generated once per VERSION and parameters."""
    extra = "-".join(f"{k}{v}" for k, v in sorted(kw.items()))
    name = f"tracekit-bench-v{VERSION}-{n_traces}x{spans_per_trace}{'-' + extra if extra else ''}.jsonl"
    path = Path(tempfile.gettempdir()) / name
    if not path.exists():
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        write_otlp_jsonl(tmp, n_traces, spans_per_trace, **kw)
        tmp.replace(path)
    return path


_JAEGER_TYPES = {"stringValue": "string", "intValue": "int64", "boolValue": "bool", "doubleValue": "float64"}
_KIND_NAMES = {1: "internal", 2: "server", 3: "client"}


def _jaeger_tags(kvs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    tags = []
    for kv in kvs:
        ((vtype, value),) = kv["value"].items()
        if vtype not in _JAEGER_TYPES:  # Jaeger tags are scalars: an array becomes its JSON text
            vtype, value = "stringValue", msgspec.json.encode(value).decode()
        tags.append(
            {
                "key": kv["key"],
                "type": _JAEGER_TYPES[vtype],
                "value": int(value) if vtype == "intValue" else value,
            }
        )
    return tags


def _as_jaeger(spans: list[tuple[int, str, int, dict]], rich: bool) -> dict[str, Any]:
    """One generated trace as the Jaeger query API writes it (``processes`` keyed p1, p2, ...)."""
    processes: dict[tuple[str, int], str] = {}
    out = []
    for _, service, pod, d in spans:
        pid = processes.setdefault((service, pod), f"p{len(processes) + 1}")
        tags = _jaeger_tags(d.get("attributes", []))
        tags.append({"key": "span.kind", "type": "string", "value": _KIND_NAMES[d["kind"]]})
        if d.get("status", {}).get("code") == 2:
            tags.append({"key": "error", "type": "bool", "value": True})
            tags.append({"key": "otel.status_description", "type": "string", "value": d["status"]["message"]})
        start = int(d["startTimeUnixNano"]) // 1000
        span: dict[str, Any] = {
            "traceID": d["traceId"],
            "spanID": d["spanId"],
            "operationName": d["name"],
            "references": (
                [{"refType": "CHILD_OF", "traceID": d["traceId"], "spanID": d["parentSpanId"]}]
                if "parentSpanId" in d
                else []
            ),
            "startTime": start,
            "duration": int(d["endTimeUnixNano"]) // 1000 - start,
            "tags": tags,
            "logs": [],
            "processID": pid,
            "warnings": None,
        }
        out.append(span)
    procs = {
        pid: {"serviceName": service, "tags": _jaeger_tags(_resource(service, pod, rich)["attributes"])}
        for (service, pod), pid in processes.items()
    }
    return {"traceID": out[0]["traceID"], "spans": out, "processes": procs, "warnings": None}


def _zipkin_tag(kv: dict[str, Any]) -> str:
    """Zipkin tags are strings (an array becomes its JSON text, booleans ``true``/``false``)."""
    ((vtype, value),) = kv["value"].items()
    if vtype in ("stringValue", "intValue"):
        return str(value)
    return msgspec.json.encode(value).decode()


def _as_zipkin(spans: list[tuple[int, str, int, dict]], rich: bool) -> list[tuple[int, dict[str, Any]]]:
    """One generated trace as Brave reports it with B3: (end, span) pairs; a SERVER span whose parent
    is a CLIENT span reports under the client's id (``"shared": true``), as B3 propagation makes it."""
    by_id = {d["spanId"]: d for _, _, _, d in spans}
    shared = {
        d["spanId"]: d["parentSpanId"]
        for _, _, _, d in spans
        if d["kind"] == 2 and by_id.get(d.get("parentSpanId", ""), {}).get("kind") == 3
    }
    out = []
    for end, service, pod, d in spans:
        tags = {kv["key"]: _zipkin_tag(kv) for kv in d.get("attributes", [])}
        if rich:  # Zipkin has no resource: tracers copy process labels into tags
            for kv in _resource(service, pod, rich)["attributes"]:
                tags.setdefault(kv["key"], _zipkin_tag(kv))
        if d.get("status", {}).get("code") == 2:
            tags["error"] = d["status"]["message"]
        sid = shared.get(d["spanId"], d["spanId"])
        parent = d.get("parentSpanId")
        if d["spanId"] in shared:
            parent = by_id[shared[d["spanId"]]].get("parentSpanId")
        elif parent in shared:
            parent = shared[parent]
        start = int(d["startTimeUnixNano"]) // 1000
        z: dict[str, Any] = {
            "traceId": d["traceId"],
            "id": sid,
            "name": d["name"],
            "timestamp": start,
            "duration": int(d["endTimeUnixNano"]) // 1000 - start,
            "localEndpoint": {"serviceName": service},
            "tags": tags,
        }
        if parent:
            z["parentId"] = parent
        if d["kind"] in (2, 3):
            z["kind"] = "SERVER" if d["kind"] == 2 else "CLIENT"
        if d["spanId"] in shared:
            z["shared"] = True
        out.append((end, z))
    return out


def write_documents(
    directory: str | os.PathLike[str],
    n_traces: int,
    spans_per_trace: int = 10,
    *,
    rich_resources: bool = True,
) -> dict[str, Path]:
    """The same generated traces as whole documents and as one trace per line, written as they are
    generated (never held whole):

    - ``jaeger``: the query API's ``{"data": [...]}`` on one line, as ``/api/traces`` answers;
    - ``jaeger-lines``: ``{"data": [trace]}`` per line;
    - ``zipkin``: one JSON array of spans in the order they ended, so a trace's spans (and the two
      halves of each shared span) are spread over the document among other traces' spans;
    - ``zipkin-lines``: one trace's spans per line.
    """
    d = Path(directory)
    paths = {k: d / f"{k}.json" for k in ("jaeger", "jaeger-lines", "zipkin", "zipkin-lines")}
    rng = random.Random(1)
    gap = 1_000_000_000 // 2000
    t0 = 1_767_225_600_000_000_000
    enc = msgspec.json.encode
    heap: list[tuple[int, int, dict[str, Any]]] = []
    seq = 0
    with (
        open(paths["jaeger"], "wb") as jd,
        open(paths["jaeger-lines"], "wb") as jl,
        open(paths["zipkin"], "wb") as zd,
        open(paths["zipkin-lines"], "wb") as zl,
    ):
        jd.write(b'{"data":[')
        zd.write(b"[")
        first_z = True

        def put(z: dict[str, Any]) -> None:
            nonlocal first_z
            zd.write((b"" if first_z else b",\n") + enc(z))
            first_z = False

        for n in range(n_traces):
            start = t0 + n * gap
            while heap and heap[0][0] <= start:
                put(heapq.heappop(heap)[2])
            spans = _trace_spans(rng, n, start, spans_per_trace)
            trace = enc(_as_jaeger(spans, rich_resources))
            jd.write((b"," if n else b"") + trace)
            jl.write(b'{"data":[' + trace + b"]}\n")
            zspans = _as_zipkin(spans, rich_resources)
            zl.write(enc([z for _, z in zspans]) + b"\n")
            for end, z in zspans:
                heapq.heappush(heap, (end, seq, z))
                seq += 1
        while heap:
            put(heapq.heappop(heap)[2])
        jd.write(b'],"total":0,"limit":0,"offset":0,"errors":null}')
        zd.write(b"]\n")
    return paths

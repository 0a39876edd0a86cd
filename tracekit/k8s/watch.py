"""Background list+watch of Ingresses, HTTPRoutes and Services, published as an immutable routing table.

One daemon thread per resource lists it, then watches from the list's ``resourceVersion``; a watch that
ends is resumed from the last version seen, a ``410 Gone`` (expired version) triggers a fresh list, and
any other failure (API down, 403) is retried after one warning. HTTPRoutes are skipped quietly when the
Gateway API CRDs are absent (404) and re-checked rarely.

A struggling API server must not be hammered (a proxy or an overloaded server may end every watch at
once with an empty 200, and re-opening it at once makes a tight loop). So, as client-go's reflector
does, every *unproductive* cycle (an error, or a watch that ended without events before it was open
``min_open`` seconds) doubles a jittered delay before the next request, and only a *productive* watch
(events, or open long enough) resets it; a successful list does not. On top, a token bucket caps each
resource's requests per second whatever happens (:class:`RateLimit`).

After every change the threads compile a new :class:`~tracekit.k8s.routing.RoutingTable` (CPU only, under
a lock that never covers I/O) and swap it into :attr:`RoutingWatch.table` with one reference assignment.
A request reads that attribute once and looks up in memory: no API call, no lock.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from tracekit.k8s import api_calls, client
from tracekit.k8s.metadata import describe_api_error
from tracekit.k8s.routing import RoutingTable

log = logging.getLogger("tracekit.k8s")

#: The resources the watch keeps, in the order the routing table needs them.
WATCHED: tuple[api_calls.ApiCall, ...] = (api_calls.INGRESSES, api_calls.SERVICES, api_calls.HTTPROUTES)

#: How long before an absent Gateway API is looked for again (seconds).
CRD_RECHECK = 600.0


class _Gone(Exception):
    """The watched resourceVersion expired (410): list again."""


class RoutingWatch:
    """Keeps :attr:`table` current with the cluster's routing objects in one namespace.

    :param connection: where the API is and which namespace to watch.
    :param pod_labels: this pod's labels (None if unknown) to answer "does the Service select me?".
    :param watch_timeout: server-side ``timeoutSeconds`` of each watch request; the watch is resumed
        after it, so shorter values only cost a request (tests use a few seconds).
    :param backoff: (first, max) delay in seconds after an unproductive cycle; doubles each time.
    :param min_open: seconds a watch without events must stay open to count as productive (default:
        5 s, or half of ``watch_timeout`` when that is shorter, so a server-side timeout always counts).
    :param max_rate: / :param burst: the cap on requests per second per resource, and its burst.
    """

    def __init__(
        self,
        connection: client.Connection,
        pod_labels: Mapping[str, str] | None,
        *,
        watch_timeout: int = 300,
        request_timeout: float = 5.0,
        backoff: tuple[float, float] = (0.5, 30.0),
        min_open: float | None = None,
        max_rate: float = 1.0,
        burst: int = 5,
        resources: tuple[api_calls.ApiCall, ...] = WATCHED,
    ) -> None:
        self.connection = connection
        self.namespace = connection.namespace
        self.pod_labels = dict(pod_labels) if pod_labels is not None else None
        self.watch_timeout = watch_timeout
        self.request_timeout = request_timeout
        self.backoff = backoff
        self.min_open = min(5.0, watch_timeout / 2) if min_open is None else min_open
        self.max_rate = max_rate
        self.burst = burst
        self.resources = resources
        #: The current snapshot; replaced (never mutated) on every change.
        self.table = RoutingTable(pod_labels=self.pod_labels)
        #: Incremented on every new table; tests and callers wait on it.
        self.generation = 0
        #: Counters for tests and diagnostics: lists, watches, relists (410), errors, unproductive
        #: watches (ended without events, too soon), backoff resets (after a productive watch).
        self.stats = {"lists": 0, "watches": 0, "relists": 0, "errors": 0, "unproductive": 0, "resets": 0}
        #: The current backoff delay per resource (0: none), for tests and diagnostics.
        self.delays: dict[str, float] = {c.resource: 0.0 for c in resources}
        self._stores: dict[str, dict[str, Mapping[str, Any]]] = {c.resource: {} for c in resources}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._settled: dict[str, threading.Event] = {c.resource: threading.Event() for c in resources}
        self._watches: dict[str, Any] = {}
        self._threads: list[threading.Thread] = []
        self._warned = False

    # --- life cycle ---------------------------------------------------------------------------

    def start(self) -> RoutingWatch:
        self._spawn()
        if hasattr(os, "register_at_fork"):
            # Threads do not survive fork (gunicorn --preload, multiprocessing): restart them in the
            # child with its own connection pool, or its table would freeze at fork time.
            ref = weakref.ref(self)

            def restart_in_child() -> None:
                watch = ref()
                if watch is not None:
                    watch._restart_in_child()

            os.register_at_fork(after_in_child=restart_in_child)
        return self

    def _restart_in_child(self) -> None:
        if self._stop.is_set():
            return
        from kubernetes import client as k8s_client

        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._watches = {}
        self._threads = []
        api = k8s_client.ApiClient(self.connection.api.configuration)
        self.connection = client.Connection(api, self.connection.namespace, self.connection.source)
        self._spawn()

    def _spawn(self) -> None:
        for call in self.resources:
            t = threading.Thread(
                target=self._run, args=(call,), name=f"tracekit-watch-{call.resource}", daemon=True
            )
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 0.5) -> None:
        """Ask the threads to stop and wait up to ``timeout`` for them.

        A thread blocked in a watch read ends when that watch ends (at the latest after
        ``watch_timeout``); the threads are daemons, so they never hold up process exit.
        """
        self._stop.set()
        for w in list(self._watches.values()):
            with contextlib.suppress(Exception):
                w.stop()
        for t in self._threads:
            t.join(timeout / max(1, len(self._threads)))
        self._threads = [t for t in self._threads if t.is_alive()]

    def wait_settled(self, timeout: float) -> bool:
        """Wait until every resource had its first list attempt (success or failure); ``timeout`` in total."""
        deadline = time.monotonic() + timeout
        return all(ev.wait(max(0.0, deadline - time.monotonic())) for ev in self._settled.values())

    def wait_for(self, predicate: Callable[[RoutingTable], bool], timeout: float) -> bool:
        """Wait until ``predicate(self.table)`` holds (re-checked on every new table and every error)."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self.table), timeout)

    # --- the per-resource loop ----------------------------------------------------------------

    def _run(self, call: api_calls.ApiCall) -> None:
        limit = RateLimit(self.max_rate, self.burst)
        version: str | None = None
        must_list = True
        while not self._stop.is_set():
            delay = self.delays[call.resource]
            if delay and self._stop.wait(delay * random.uniform(0.8, 1.2)):
                return
            try:
                if must_list:
                    if not limit.take(self._stop):
                        return
                    version = self._list(call)
                    must_list = False
                if not limit.take(self._stop):
                    return
                opened = time.monotonic()
                events, version = self._watch(call, version)
                if events or time.monotonic() - opened >= self.min_open:
                    if delay:
                        self.stats["resets"] += 1
                    self.delays[call.resource] = 0.0
                else:
                    self.stats["unproductive"] += 1
                    self._back_off(call)
            except _Gone:
                self.stats["relists"] += 1
                log.debug("tracekit: %s watch expired (410 Gone); listing again", call.resource)
                must_list = True
            except Exception as exc:
                self._settled[call.resource].set()
                if self._stop.is_set():
                    return
                status = getattr(exc, "status", None)
                if status == 410:
                    self.stats["relists"] += 1
                    must_list = True
                    continue
                if status == 404 and call is api_calls.HTTPROUTES:
                    log.debug("tracekit: Gateway API (HTTPRoute) not installed; skipping it")
                    must_list = True
                    self._stop.wait(CRD_RECHECK)
                    continue
                with self._changed:
                    self.stats["errors"] += 1
                    self._changed.notify_all()  # lets wait_for() callers re-check on failures too
                self._report(call, exc)
                must_list = True  # the API was unreachable or refused: start over from a list
                self._back_off(call)

    def _back_off(self, call: api_calls.ApiCall) -> None:
        """One more unproductive cycle: the next delay doubles (the first one is ``backoff[0]``)."""
        delay = self.delays[call.resource]
        self.delays[call.resource] = min(delay * 2, self.backoff[1]) if delay else self.backoff[0]

    def _report(self, call: api_calls.ApiCall, exc: BaseException) -> None:
        message = describe_api_error(exc, call)
        if not self._warned:
            self._warned = True
            log.warning(
                "tracekit: cannot watch %s in namespace %s (%s); routing attributes may be missing, "
                "retrying with backoff",
                call.resource,
                self.namespace,
                message,
            )
        else:
            log.debug("tracekit: watch %s failed again: %s", call.resource, message)

    def _list(self, call: api_calls.ApiCall) -> str | None:
        fn = client.list_function(self.connection.api, call)
        resp = fn(namespace=self.namespace, _request_timeout=self.request_timeout)
        try:
            body = json.loads(resp.data)
        finally:
            resp.release_conn()
        items = {str((o.get("metadata") or {}).get("name")): o for o in body.get("items") or []}
        self.stats["lists"] += 1
        with self._lock:
            self._stores[call.resource] = items
            self._rebuild()
        self._settled[call.resource].set()
        return (body.get("metadata") or {}).get("resourceVersion")

    def _watch(self, call: api_calls.ApiCall, version: str | None) -> tuple[int, str | None]:
        """Watch from ``version`` until the stream ends; return (object events seen, last version)."""
        from kubernetes import watch

        w = watch.Watch()
        self._watches[call.resource] = w
        self.stats["watches"] += 1
        kwargs: dict[str, Any] = {
            "namespace": self.namespace,
            "timeout_seconds": self.watch_timeout,
            "allow_watch_bookmarks": True,
            # Read timeout a bit past the server-side timeout: a silent dead connection ends too.
            "_request_timeout": (self.request_timeout, self.watch_timeout + 10),
        }
        if version:
            kwargs["resource_version"] = version
        events = 0
        try:
            for event in w.stream(client.list_function(self.connection.api, call), **kwargs):
                kind = event.get("type")
                obj = event.get("raw_object") or {}
                meta = obj.get("metadata") or {}
                version = meta.get("resourceVersion") or version
                if kind == "BOOKMARK":
                    continue
                name = str(meta.get("name"))
                events += 1
                with self._lock:
                    store = dict(self._stores[call.resource])
                    if kind == "DELETED":
                        store.pop(name, None)
                    else:
                        store[name] = obj
                    self._stores[call.resource] = store
                    self._rebuild()
        except Exception as exc:
            if getattr(exc, "status", None) == 410:
                raise _Gone() from exc
            raise
        finally:
            self._watches.pop(call.resource, None)
        if self._warned and events:
            log.debug("tracekit: watch of %s is working", call.resource)
        return events, version

    def _rebuild(self) -> None:
        """Compile a new table from the stores (caller holds the lock; CPU only, no I/O)."""
        stores = self._stores
        self.table = RoutingTable(
            ingresses=stores.get(api_calls.INGRESSES.resource, {}).values(),
            routes=stores.get(api_calls.HTTPROUTES.resource, {}).values(),
            services=stores.get(api_calls.SERVICES.resource, {}).values(),
            pod_labels=self.pod_labels,
        )
        self.generation += 1
        self._changed.notify_all()


class RateLimit:
    """A token bucket: ``rate`` requests per second on average, ``burst`` at once. One thread per bucket."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._tokens = float(self.burst)
        self._last = time.monotonic()

    def take(self, stop: threading.Event) -> bool:
        """Wait for a token (False when ``stop`` is set meanwhile)."""
        while True:
            now = time.monotonic()
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            if stop.wait((1.0 - self._tokens) / self.rate):
                return False

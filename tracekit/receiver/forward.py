"""Send what the receiver accepted on to another OTLP/HTTP endpoint, off the request path.

A slow or dead downstream (Jaeger, a Collector) must never slow the receiver's answers nor lose the
local file: requests are queued and posted by one background thread; when the queue is full the oldest
payload is not waited for, the new one is dropped and counted (as the Collector's sending queue does).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import requests

from tracekit.receiver.codec import PROTOBUF

log = logging.getLogger(__name__)

_STOP = object()


def traces_url(url: str) -> str:
    """``http://host:4318`` -> ``http://host:4318/v1/traces``; a URL with a path is used as given."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"--forward: not an http(s) URL: {url!r}")
    if parts.path in ("", "/"):
        parts = parts._replace(path="/v1/traces")
    return urlunsplit(parts)


class Forwarder:
    """Posts protobuf payloads to ``url`` from a background thread."""

    def __init__(self, url: str, *, max_queue: int = 512, timeout: float = 10.0) -> None:
        self.url = traces_url(url)
        self.timeout = timeout
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_queue)
        self._session = requests.Session()
        self._thread = threading.Thread(target=self._run, name="otlp-forward", daemon=True)
        self._thread.start()

    def submit(self, payload: bytes | Callable[[], bytes]) -> None:
        """Queue one protobuf body, or a function making it (then called on the forwarding thread, so
        a conversion, e.g. of an OTLP/JSON request, does not delay the receiver's answer)."""
        try:
            self._queue.put_nowait(payload)
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            try:
                payload = item() if callable(item) else item
            except ValueError as exc:  # a request the receiver accepted but cannot re-encode
                self.failed += 1
                log.warning("cannot forward a request: %s", exc)
                continue
            assert isinstance(payload, bytes)
            try:
                response = self._session.post(
                    self.url, data=payload, headers={"Content-Type": PROTOBUF}, timeout=self.timeout
                )
                if response.status_code // 100 == 2:
                    self.sent += 1
                else:
                    self.failed += 1
                    log.warning("forward to %s answered %s", self.url, response.status_code)
            except requests.RequestException as exc:
                self.failed += 1
                log.warning("forward to %s failed: %s", self.url, exc)

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (waiting at most ``timeout`` seconds), then stop the thread."""
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=timeout)
        self._thread.join(timeout)
        self._session.close()

"""OTLP/HTTP on an asyncio event loop with h11, the decoding on a small pool of worker threads.

Why this foundation (measured, ``docs/receiver.md``): a thread per connection (the standard library's
``ThreadingHTTPServer``) puts no bound on threads, has no header or body deadline, and at the
descriptor limit spins on a failing ``accept``. Here one event-loop thread holds every connection
(an idle one costs a descriptor and a few kilobytes, not a thread), every wait has a deadline
(``asyncio.timeout``), and the CPU-bound work runs on ``Limits.workers`` threads, each request
holding its share of the memory budget from before its body is read until it is answered. h11
(python-hyper's HTTP/1.1 state machine, also under httpx and uvicorn) does the protocol: framing,
keep-alive, chunked bodies, header size limits.

Connections are capped below the descriptor limit. At the cap, the connection idle the longest (one
waiting for its next request) is closed to make room, as nginx reuses keep-alive connections; with
none idle the newcomer is closed at once. So idle connections cannot lock out an exporter.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import h11

from tracekit.receiver import codec
from tracekit.receiver.limits import Limits, OverBudget, Reservation
from tracekit.receiver.pipeline import Pipeline
from tracekit.receiver.store import StoreError

log = logging.getLogger(__name__)

TRACES_PATH = "/v1/traces"
#: Seconds a client is asked to wait before retrying a request refused for lack of memory or storage.
RETRY_AFTER_SECONDS = 1
#: Largest request line plus headers (h11 refuses more with 431-like errors; we answer 431).
MAX_HEADER_BYTES = 64 * 1024
_READ_SIZE = 256 * 1024


class _Refusal(Exception):
    def __init__(self, status: int, message: str, *, retry: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retry = retry


class _Conn:
    __slots__ = ("h11", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)


class HttpServer:
    """Serves ``POST /v1/traces`` on a bound socket until :meth:`stop`.

    :param note_refused: called with (status, message) for every refusal, for the receiver's counters.
    """

    def __init__(
        self,
        sock: socket.socket,
        pipeline: Pipeline,
        limits: Limits,
        connection_cap: int,
        note_refused: Callable[[int, str], None],
    ) -> None:
        self._sock = sock
        self._pipeline = pipeline
        self._limits = limits
        self.connection_cap = connection_cap
        self._note_refused = note_refused
        self._pool = concurrent.futures.ThreadPoolExecutor(limits.workers, thread_name_prefix="otlp-http")
        self._loop = asyncio.new_event_loop()
        self._conns: set[_Conn] = set()
        #: Connections waiting for a request, oldest first (the ones to close when at the cap).
        self._idle: collections.OrderedDict[_Conn, None] = collections.OrderedDict()
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        #: Connections closed to make room at the cap, and newcomers turned away with none idle.
        self.evicted = 0
        self.turned_away = 0

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="otlp-http-loop", daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._connection, sock=self._sock, limit=_READ_SIZE)
        self._ready.set()
        await self._stopping.wait()
        server.close()
        # Requests being decoded finish and are answered; idle connections are closed now.
        for conn in list(self._idle):
            conn.writer.transport.abort()
        deadline = time.monotonic() + 5
        while self._conns and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for conn in list(self._conns):
            conn.writer.transport.abort()
        # Let every connection's task run its clean-up before the loop closes.
        tasks = asyncio.all_tasks() - {asyncio.current_task()}
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=2)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await server.wait_closed()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, let requests in progress finish (up to a few seconds), close the rest."""
        if self._thread is None:
            return
        if self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout)
        self._thread = None
        self._pool.shutdown(wait=True)

    # -- connections -----------------------------------------------------------------------------
    def _admit(self, conn: _Conn) -> bool:
        if len(self._conns) >= self.connection_cap:
            if self._idle:
                oldest, _ = self._idle.popitem(last=False)
                oldest.writer.transport.abort()
                self._conns.discard(oldest)
                self.evicted += 1
            else:
                conn.writer.transport.abort()
                self.turned_away += 1
                return False
        self._conns.add(conn)
        return True

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Conn(reader, writer)
        if not self._admit(conn):
            return
        sock = writer.get_extra_info("socket")
        if sock is not None:
            # Headers and body are separate writes: no delayed-ACK stalls.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while await self._one_request(conn):
                conn.h11.start_next_cycle()
        except (ConnectionError, TimeoutError, h11.RemoteProtocolError, asyncio.IncompleteReadError) as exc:
            log.debug("connection from %s ended: %s", writer.get_extra_info("peername"), exc)
        except h11.LocalProtocolError as exc:
            log.debug("connection from %s ended: %s", writer.get_extra_info("peername"), exc)
        except Exception:
            log.exception("internal error serving %s", writer.get_extra_info("peername"))
        finally:
            self._idle.pop(conn, None)
            self._conns.discard(conn)
            await self._close(conn)

    async def _close(self, conn: _Conn) -> None:
        """Close after the answer is out. A client may still be sending a body we refused: closing
        with unread data makes the kernel reset the connection, and the client could lose the answer
        (as Apache's "lingering close" avoids), so stop writing, then read and discard for a moment."""
        writer = conn.writer
        if writer.is_closing():
            return
        if (
            conn.h11.their_state not in (h11.DONE, h11.IDLE, h11.CLOSED, h11.MUST_CLOSE)
            and writer.can_write_eof()
        ):
            try:
                writer.write_eof()
                async with asyncio.timeout(2.0):
                    while await conn.reader.read(_READ_SIZE):
                        pass
            except (OSError, TimeoutError):
                pass
        writer.transport.abort()

    async def _receive(self, conn: _Conn, deadline: float) -> Any:
        """The next h11 event, reading as needed until ``deadline`` (TimeoutError past it)."""
        while True:
            event = conn.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            async with asyncio.timeout_at(deadline):
                data = await conn.reader.read(_READ_SIZE)
            conn.h11.receive_data(data)
            self._idle.pop(conn, None)

    async def _one_request(self, conn: _Conn) -> bool:
        """Serve one request on ``conn``; False when the connection is to be closed."""
        loop = asyncio.get_running_loop()
        limits = self._limits
        # Waiting for a request: idle, and so the first to go at the connection cap.
        self._idle[conn] = None
        idle_deadline = loop.time() + limits.idle_timeout
        try:
            event = conn.h11.next_event()  # a pipelined request may be buffered already
            if event is h11.NEED_DATA:
                async with asyncio.timeout_at(idle_deadline):
                    data = await conn.reader.read(_READ_SIZE)
                conn.h11.receive_data(data)
                self._idle.pop(conn, None)
                event = await self._receive(conn, loop.time() + limits.header_timeout)
            self._idle.pop(conn, None)
        except TimeoutError:
            return False  # idle or headers too slow: close without a word, as servers do
        except h11.RemoteProtocolError as exc:
            await self._answer_error(conn, _Refusal(exc.error_status_hint, f"malformed request: {exc}"))
            return False
        if isinstance(event, h11.ConnectionClosed):
            return False
        assert isinstance(event, h11.Request)
        held = self._pipeline.reservation()
        try:
            body, media, gzipped = await self._read_body(conn, event, held, loop.time() + limits.body_timeout)
            try:
                await loop.run_in_executor(self._pool, self._pipeline.process, body, media, gzipped, held)
            except codec.PayloadError as exc:
                raise _Refusal(exc.status, str(exc)) from None
            except OverBudget as exc:
                raise _Refusal(503, str(exc), retry=True) from None
            except StoreError as exc:
                log.error("cannot store spans: %s", exc)
                raise _Refusal(503, f"cannot store spans: {exc.strerror or exc}", retry=True) from None
            finally:
                del body
        except _Refusal as refusal:
            return await self._answer_error(conn, refusal, media_of(event))
        finally:
            held.close()
        await self._send(conn, 200, codec.success_body(media), media)
        return conn.h11.our_state is h11.DONE and conn.h11.their_state is h11.DONE

    async def _read_body(
        self, conn: _Conn, request: h11.Request, held: Reservation, deadline: float
    ) -> tuple[bytearray, str, bool]:
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in request.headers}
        path = request.target.decode("latin-1").split("?", 1)[0]
        if request.method != b"POST":
            raise _Refusal(405, f"only POST {TRACES_PATH} is served")
        if path != TRACES_PATH:
            raise _Refusal(404, f"no such path {path!r}: traces go to {TRACES_PATH}")
        media = codec.media_type(headers.get("content-type"))
        if media is None:
            raise _Refusal(
                415,
                f"unsupported Content-Type {headers.get('content-type')!r}: "
                f"use {codec.PROTOBUF} or {codec.JSON}",
            )
        encoding = (headers.get("content-encoding") or "identity").strip().lower()
        if encoding not in ("identity", "gzip"):
            raise _Refusal(415, f"unsupported Content-Encoding {encoding!r}: use gzip or none")
        limit = self._limits.max_body_bytes
        length_header = headers.get("content-length")
        if length_header is None and "transfer-encoding" not in headers:
            raise _Refusal(411, "Content-Length is required")
        if length_header is not None:
            length = int(length_header)  # h11 has checked it is a number
            if length > limit:
                raise _Refusal(413, f"body of {length} bytes exceeds the {limit}-byte limit")
            try:
                held.grow(length)
            except OverBudget as exc:
                raise _Refusal(503, str(exc), retry=True) from None
        body = bytearray()
        try:
            while True:
                event = await self._receive(conn, deadline)
                if isinstance(event, h11.Data):
                    if len(body) + len(event.data) > limit:
                        raise _Refusal(413, f"body exceeds the {limit}-byte limit")
                    if length_header is None:
                        held.grow(len(event.data))
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    return body, media, encoding == "gzip"
                else:  # ConnectionClosed mid-body
                    raise ConnectionResetError("client closed the connection mid-body")
        except TimeoutError:
            raise _Refusal(
                408, f"body not received within {self._limits.body_timeout:g} s (got {len(body)} bytes)"
            ) from None
        except OverBudget as exc:
            raise _Refusal(503, str(exc), retry=True) from None

    async def _answer_error(self, conn: _Conn, refusal: _Refusal, media: str | None = None) -> bool:
        self._note_refused(refusal.status, str(refusal))
        media = media or codec.JSON
        body = codec.status_body(refusal.status, str(refusal), media)
        headers = [("Retry-After", str(RETRY_AFTER_SECONDS))] if refusal.retry else []
        # A refused request's body may not have been read: the connection cannot be reused.
        reusable = conn.h11.their_state is h11.DONE
        await self._send(conn, refusal.status, body, media, close=not reusable, extra=headers)
        return reusable and conn.h11.our_state is h11.DONE

    async def _send(
        self,
        conn: _Conn,
        status: int,
        body: bytes,
        media: str,
        *,
        close: bool = False,
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        if conn.h11.our_state not in (h11.SEND_RESPONSE, h11.IDLE):
            return  # IDLE: the request itself was malformed, and h11 lets us answer it
        headers = [("Content-Type", media), ("Content-Length", str(len(body))), ("Server", "tracekit-otlp")]
        if close:
            headers.append(("Connection", "close"))
        headers += extra or []
        data = conn.h11.send(h11.Response(status_code=status, headers=headers))
        data += conn.h11.send(h11.Data(data=body))
        data += conn.h11.send(h11.EndOfMessage())
        conn.writer.write(data)
        async with asyncio.timeout(self._limits.body_timeout):
            await conn.writer.drain()


def media_of(request: h11.Request | Any) -> str | None:
    """The answer's media type for a request: its own when supported, else None (JSON)."""
    if not isinstance(request, h11.Request):
        return None
    for name, value in request.headers:
        if name == b"content-type":
            return codec.media_type(value.decode("latin-1"))
    return None


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket (IPv6 when ``host`` has a colon); raises OSError as ``bind`` does."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=1024, reuse_port=False)


__all__ = ["RETRY_AFTER_SECONDS", "TRACES_PATH", "HttpServer", "bind"]

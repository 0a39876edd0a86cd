"""OTLP/gRPC: the ``TraceService/Export`` method of opentelemetry-proto, served by grpcio.

The method is registered from the proto's service descriptor with a raw-bytes handler, so the message
goes through the same :class:`~tracekit.receiver.pipeline.Pipeline` as an OTLP/HTTP protobuf body:
the same memory budget (charged before decoding), work limits, line and file. grpcio does the
transport: HTTP/2, gzip (``grpc-encoding``, decompressed by grpc core, which also holds the
decompressed size to ``grpc.max_receive_message_length``), deadlines and flow control.

Refusals use the gRPC status codes the OTLP specification and the Collector use: INVALID_ARGUMENT for
a body that cannot be used (not retried), RESOURCE_EXHAUSTED past a size limit or the concurrency cap
(grpc's own), UNAVAILABLE when the memory budget or the disk cannot take the request now (retried by
every OTLP exporter).

Bounds grpc core keeps for us: messages larger than ``max_body_bytes`` (compressed or not), at most
``max_connections`` connections (``grpc.max_allowed_incoming_connections``), connections idle past
``idle_timeout`` closed (``grpc.max_connection_idle_ms``), a handshake within ``header_timeout``
(``grpc.server_handshake_timeout_ms``), and RPCs beyond what the budget can hold at once refused with
RESOURCE_EXHAUSTED (``maximum_concurrent_rpcs``).
"""

from __future__ import annotations

import concurrent.futures
import errno
import logging
import socket
from collections.abc import Callable
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from tracekit.receiver import codec
from tracekit.receiver.limits import Limits, OverBudget
from tracekit.receiver.pipeline import Pipeline
from tracekit.receiver.store import StoreError

log = logging.getLogger(__name__)

_SERVICE = trace_service_pb2.DESCRIPTOR.services_by_name["TraceService"]
_EXPORT = _SERVICE.methods_by_name["Export"]
_SUCCESS = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()


class GrpcServer:
    """``opentelemetry.proto.collector.trace.v1.TraceService/Export`` on ``host:port``."""

    def __init__(
        self,
        host: str,
        port: int,
        pipeline: Pipeline,
        limits: Limits,
        connection_cap: int,
        note_refused: Callable[[int, str], None],
    ) -> None:
        self._pipeline = pipeline
        self._limits = limits
        self._note_refused = note_refused
        # As many RPCs at once as the budget can hold full-size messages of, and at least one per worker.
        concurrent_rpcs = max(limits.workers, limits.memory_budget_bytes // max(1, limits.max_body_bytes))
        options: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", limits.max_body_bytes),
            ("grpc.max_allowed_incoming_connections", connection_cap),
            ("grpc.max_connection_idle_ms", int(limits.idle_timeout * 1000)),
            ("grpc.server_handshake_timeout_ms", int(limits.header_timeout * 1000)),
            ("grpc.so_reuseport", 0),
        ]
        self._server = grpc.server(
            concurrent.futures.ThreadPoolExecutor(limits.workers, thread_name_prefix="otlp-grpc"),
            options=options,
            maximum_concurrent_rpcs=concurrent_rpcs,
        )
        handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(self._export)
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(_SERVICE.full_name, {_EXPORT.name: handler}),)
        )
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if port:
            _probe(host, port)  # grpc core would only log the reason, on stderr
        bound = self._server.add_insecure_port(address)
        if bound == 0:
            raise OSError(errno.EADDRNOTAVAIL, f"cannot bind {address}")
        self.address = (host, bound)

    def start(self) -> None:
        self._server.start()

    def stop(self, grace: float = 5.0) -> None:
        """Refuse new RPCs, let those in progress finish within ``grace`` seconds."""
        self._server.stop(grace).wait(grace + 1)

    def _export(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        held = self._pipeline.reservation()
        try:
            held.grow(len(request))
            self._pipeline.process(request, codec.PROTOBUF, False, held)
        except codec.PayloadError as exc:
            code = (
                grpc.StatusCode.RESOURCE_EXHAUSTED if exc.status == 413 else grpc.StatusCode.INVALID_ARGUMENT
            )
            self._refuse(context, exc.status, code, str(exc))
        except OverBudget as exc:
            self._refuse(context, 503, grpc.StatusCode.UNAVAILABLE, str(exc))
        except StoreError as exc:
            log.error("cannot store spans: %s", exc)
            self._refuse(
                context, 503, grpc.StatusCode.UNAVAILABLE, f"cannot store spans: {exc.strerror or exc}"
            )
        finally:
            held.close()
        return _SUCCESS

    def _refuse(
        self, context: grpc.ServicerContext, status: int, code: grpc.StatusCode, message: str
    ) -> None:
        self._note_refused(status, message)
        context.abort(code, message)


def _probe(host: str, port: int) -> None:
    """Raise the OSError binding ``host:port`` gives (in use, not an address of this machine, ...)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


__all__ = ["GrpcServer"]

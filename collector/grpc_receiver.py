"""OTLP/gRPC: ``TraceService/Export``, ``LogsService/Export`` and ``MetricsService/Export``.

grpcio's synchronous server with a thread pool (measured faster than grpc.aio here; see
docs/performance-history.md). The method is registered as a generic handler that takes and returns
raw bytes: the request is parsed in the handler, so a malformed message is answered
INVALID_ARGUMENT (a failing grpc deserializer would answer INTERNAL), and the token is
checked from the call's metadata before the body is parsed at all.
"""

from __future__ import annotations

import functools
import logging
import socket
from collections.abc import Callable
from concurrent import futures
from pathlib import Path

import grpc

from collector.config import ReceiverConfig
from collector.errors import ErrorKind, IngestError, grpc_status
from collector.ingest import Ingest
from collector.signals import GRPC_METHODS, Signal, export_signal
from spanstore.niceness import lower_thread_priority

__all__ = ["EXPORT_METHOD", "GrpcReceiver", "format_address"]

log = logging.getLogger(__name__)

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _probe_bind(host: str, port: int) -> None:
    """Raise OSError (``Address already in use``, ...) when ``host:port`` cannot be bound:
    grpc's own failure is a vague RuntimeError plus a C-core log line on stderr."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return  # grpc reports it
    error: OSError | None = None
    for family, kind, proto, _, address in infos:  # grpc binds every one; fails if none
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as grpc does
                sock.bind(address)
            return
        except OSError as exc:
            error = error or exc
    if error is not None:
        raise error


class _TraceService(grpc.GenericRpcHandler):  # type: ignore[misc]
    def __init__(self, ingest: Ingest) -> None:
        self._ingest = ingest
        # No (de)serializers: grpc hands us bytes and sends the bytes we return.
        # One handler per OTLP signal (collector/signals.py): traces, logs, metrics.
        self._exports = {
            method: grpc.unary_unary_rpc_method_handler(self._export_call_of(signal))
            for method, signal in GRPC_METHODS.items()
        }
        self._deny = grpc.unary_unary_rpc_method_handler(self._deny_call)

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        export = self._exports.get(handler_call_details.method)
        if export is None:
            return None  # grpc answers UNIMPLEMENTED
        authorization = None
        for key, value in handler_call_details.invocation_metadata or ():
            if key == "authorization" and isinstance(value, str):
                authorization = value
        try:
            self._ingest.authorize(authorization)
        except IngestError:
            return self._deny
        return export

    def _deny_call(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        err = IngestError(
            ErrorKind.UNAUTHENTICATED,
            "missing or wrong ingest token (expected metadata 'authorization: Bearer <token>')",
        )
        context.abort_with_status(grpc_status(err))
        raise AssertionError("unreachable: abort_with_status raises")

    def _export_call_of(self, signal: Signal) -> Callable[[bytes, grpc.ServicerContext], bytes]:
        def export_call(request: bytes, context: grpc.ServicerContext) -> bytes:
            return self._export_call(request, context, signal)

        return export_call

    def _export_call(
        self, request: bytes, context: grpc.ServicerContext, signal: Signal = Signal.TRACES
    ) -> bytes:
        charge = self._ingest.charge()
        try:
            # grpc has read the message already; charging it still bounds how many wait
            # for the store, and a full collector answers UNAVAILABLE + RetryInfo at once.
            left = context.time_remaining()
            wait = self._ingest.config.admission_wait
            charge.grow(len(request), wait if left is None else min(wait, left / 2))
            # The bytes go to the store as they came: it parses them in a decoder process
            # and answers InvalidRequest (-> INVALID_ARGUMENT) when they are malformed.
            response = export_signal(self._ingest, signal, request, context.time_remaining())
        except IngestError as err:
            charge.release()
            context.abort_with_status(grpc_status(err))
            raise AssertionError("unreachable: abort_with_status raises") from None
        charge.release()
        answer: bytes = response.SerializeToString()
        return answer


class GrpcReceiver:
    """The gRPC listener; ``start()`` binds and returns the bound address."""

    def __init__(self, config: ReceiverConfig, ingest: Ingest) -> None:
        self.config = config
        self._ingest = ingest
        self._server: grpc.Server | None = None
        self.address: str | None = None

    def start(self) -> str:
        config = self.config
        assert config.grpc_port is not None
        server = grpc.server(
            futures.ThreadPoolExecutor(
                max_workers=config.grpc_workers,
                thread_name_prefix="otlp-grpc",
                initializer=functools.partial(lower_thread_priority, config.thread_niceness),
            ),
            handlers=[_TraceService(self._ingest)],
            options=[
                ("grpc.max_receive_message_length", config.max_grpc_message_bytes),
                # Without this a second server could bind the same port and steal half
                # the connections; we want "address in use" to fail loudly instead.
                ("grpc.so_reuseport", 0),
            ],
        )
        target = format_address(config.host, config.grpc_port)
        try:
            _probe_bind(config.host, config.grpc_port)
        except OSError as exc:
            raise OSError(f"otlp-grpc: cannot listen on {target}: {exc.strerror or exc}") from None
        try:
            if config.tls_cert is not None and config.tls_key is not None:
                credentials = grpc.ssl_server_credentials(
                    [(Path(config.tls_key).read_bytes(), Path(config.tls_cert).read_bytes())]
                )
                port = server.add_secure_port(target, credentials)
            else:
                port = server.add_insecure_port(target)
        except RuntimeError as exc:  # grpc raises RuntimeError("Failed to bind ...")
            raise OSError(f"otlp-grpc: cannot listen on {target}: {exc}") from None
        if port == 0:  # older grpcio report a failed bind this way
            raise OSError(f"otlp-grpc: cannot listen on {target}")
        server.start()
        self._server = server
        self.address = format_address(config.host, port)
        log.info("otlp-grpc listening on %s", self.address)
        return self.address

    def stop(self, grace: float) -> None:
        """Refuse new calls, let in-flight ones finish for up to ``grace`` seconds."""
        server, self._server = self._server, None
        if server is not None:
            server.stop(grace).wait()

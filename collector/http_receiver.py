"""OTLP/HTTP: ``POST /v1/traces`` with protobuf or JSON bodies, optionally gzip-compressed.

:class:`OtlpHttpHandler` holds the whole protocol as a function of (method, path, headers,
body) so that another server (the query API) can mount it on its own port;
:class:`HttpReceiver` is a thin ``ThreadingHTTPServer`` shell around it that adds
HTTP/1.1 keep-alive, TLS and a graceful stop.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Iterable, Mapping
from http.server import ThreadingHTTPServer
from typing import Any, Protocol

import orjson
from google.protobuf import json_format
from google.protobuf.message import Message

from collector.config import ReceiverConfig
from collector.errors import JSON, PROTOBUF, ErrorKind, IngestError, classify, http_error_body
from collector.grpc_receiver import format_address
from collector.ingest import Charge, Ingest
from collector.signals import (
    LOGS_PATH,
    METRICS_PATH,
    SIGNAL_PATHS,
    TRACES_PATH,
    decode_signal,
    export_signal,
)
from httpbase import Answer, AnswerHandler
from spanstore.niceness import lower_thread_priority

__all__ = [
    "LOGS_PATH",
    "METRICS_PATH",
    "TRACES_PATH",
    "BodyReader",
    "HttpAnswer",
    "HttpReceiver",
    "OtlpHttpHandler",
]

log = logging.getLogger(__name__)

_CONTENT_TYPES = {
    "application/x-protobuf": PROTOBUF,
    # Not in the OTLP spec, but the registered name of the same format; accepting it
    # costs nothing and some clients send it.
    "application/protobuf": PROTOBUF,
    "application/json": JSON,
}
#: Output produced per zlib call while inflating: small enough to stop a bomb early,
#: large enough that a 20 MiB body takes few Python-level iterations.
_INFLATE_CHUNK = 256 * 1024
_OVERLOADED = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n"
    b"Connection: close\r\n\r\n"
)
_CORS_ALLOW_HEADERS = "Content-Type, Content-Encoding, Authorization, User-Agent, X-Requested-With"
#: Memory charged per byte of decompressed OTLP/JSON, for the parsed document and the
#: protobuf built from it (protobuf bodies go to the store as they are).
_JSON_MEMORY_FACTOR = 4


class BodyReader(Protocol):
    """The request body stream (``rfile`` of a stdlib handler, or any binary file)."""

    def read(self, size: int = -1, /) -> bytes: ...

    def readline(self, size: int = -1, /) -> bytes: ...


#: The receiver's answers are the serving base's (httpbase.Answer), under the name the
#: collector's callers know.
HttpAnswer = Answer


class OtlpHttpHandler:
    """The OTLP/HTTP protocol with no server attached.

    ``handle(method, path, headers, body)`` returns the complete answer. ``body`` is
    either the raw (possibly compressed) body as bytes, when the caller's framework has
    already read it, or a reader positioned at the start of the body, from which the
    handler reads ``Content-Length`` bytes or a chunked body, never more than the limit.
    Socket errors while reading propagate (``OSError``); the caller closes the connection.
    """

    def __init__(self, ingest: Ingest) -> None:
        self.ingest = ingest
        self.config = ingest.config
        self._cors_any = "*" in self.config.cors_origins
        self._cors = frozenset(self.config.cors_origins)

    def handle(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str] | Iterable[tuple[str, str]],
        body: bytes | BodyReader,
    ) -> HttpAnswer:
        items = headers.items() if isinstance(headers, Mapping) else headers
        lowered = {key.lower(): value for key, value in items}
        cors = self._cors_headers(lowered.get("origin"))
        # Errors answer in the request's encoding when it is one of ours, else JSON.
        media = _CONTENT_TYPES.get(_media_type(lowered.get("content-type", "")), JSON)
        # Whether the body has been read to its end (so the connection can be reused).
        consumed = isinstance(body, bytes) or not _declares_body(lowered)
        charge = self.ingest.charge()
        try:
            signal = SIGNAL_PATHS.get(path.partition("?")[0])
            if signal is None:
                raise IngestError(
                    ErrorKind.NOT_FOUND,
                    f"no such endpoint; POST {TRACES_PATH}, {LOGS_PATH} or {METRICS_PATH}",
                )
            if method == "OPTIONS" and cors:
                return self._preflight(cors, lowered)
            if method != "POST":
                raise IngestError(ErrorKind.METHOD_NOT_ALLOWED, f"{method} not allowed; use POST")
            self.ingest.authorize(lowered.get("authorization"))
            raw_type = lowered.get("content-type", "")
            if _media_type(raw_type) not in _CONTENT_TYPES:
                raise IngestError(
                    ErrorKind.UNSUPPORTED_MEDIA_TYPE,
                    f"unsupported content type {raw_type!r}; "
                    "use application/x-protobuf or application/json",
                )
            data = self._read_body(lowered, body, charge)
            consumed = True
            decoded = self._decode_content(lowered, data, charge)
            del data
            if media == JSON:
                charge.grow(len(decoded) * _JSON_MEMORY_FACTOR)
            request = decode_signal(decoded, media, signal)
            del decoded
            response = export_signal(self.ingest, signal, request)
        except IngestError as err:
            return self._error(err, media, cors, consumed)
        except OSError:
            raise  # the connection broke while reading: nothing to answer
        except Exception as exc:
            return self._error(
                classify(exc, self.config.retry_after_seconds), media, cors, consumed
            )
        finally:
            charge.release()
        return HttpAnswer(200, (("Content-Type", media), *cors), _encode_response(response, media))

    # ------------------------------------------------------------------ pieces

    def _error(
        self, err: IngestError, media: str, cors: tuple[tuple[str, str], ...], consumed: bool
    ) -> HttpAnswer:
        extra: list[tuple[str, str]] = [("Content-Type", media), *cors]
        if err.kind is ErrorKind.METHOD_NOT_ALLOWED:
            extra.append(("Allow", "POST, OPTIONS" if self._cors else "POST"))
        if err.kind is ErrorKind.UNAUTHENTICATED:
            extra.append(("WWW-Authenticate", 'Bearer realm="otlp"'))
        if err.retry_after is not None:
            extra.append(("Retry-After", str(err.retry_after)))
        return HttpAnswer(
            err.kind.http_status, tuple(extra), http_error_body(err, media), close=not consumed
        )

    def _cors_headers(self, origin: str | None) -> tuple[tuple[str, str], ...]:
        if origin is None or not (self._cors_any or origin in self._cors):
            return ()
        return (("Access-Control-Allow-Origin", origin), ("Vary", "Origin"))

    def _preflight(
        self, cors: tuple[tuple[str, str], ...], headers: Mapping[str, str]
    ) -> HttpAnswer:
        requested = headers.get("access-control-request-headers")
        return HttpAnswer(
            204,
            (
                *cors,
                ("Access-Control-Allow-Methods", "POST"),
                ("Access-Control-Allow-Headers", requested or _CORS_ALLOW_HEADERS),
                ("Access-Control-Max-Age", "7200"),
            ),
            b"",
        )

    def _read_body(
        self, headers: Mapping[str, str], body: bytes | BodyReader, charge: Charge
    ) -> bytes:
        limit = self.config.max_http_body_bytes
        if isinstance(body, bytes):
            if len(body) > limit:
                raise _too_large(limit)
            charge.grow(len(body))
            return body
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return _read_chunked(body, limit, charge)
        length_text = headers.get("content-length")
        if length_text is None:
            raise IngestError(
                ErrorKind.LENGTH_REQUIRED, "Content-Length (or chunked transfer) required"
            )
        try:
            length = int(length_text)
        except ValueError:
            length = -1
        if length < 0:
            raise IngestError(ErrorKind.BAD_REQUEST, f"bad Content-Length {length_text!r}")
        if length > limit:
            raise _too_large(limit)
        charge.grow(length)  # before reading: a full collector does not take the body in
        data = body.read(length)
        if len(data) != length:
            raise IngestError(
                ErrorKind.BAD_REQUEST, f"body ended after {len(data)} of {length} bytes"
            )
        return data

    def _decode_content(self, headers: Mapping[str, str], data: bytes, charge: Charge) -> bytes:
        encoding = headers.get("content-encoding", "").strip().lower()
        if encoding in ("", "identity"):
            return data
        if encoding in ("gzip", "x-gzip"):
            return _inflate(data, 16 + zlib.MAX_WBITS, self.config.max_http_body_bytes, charge)
        if encoding == "deflate":
            return _inflate(data, zlib.MAX_WBITS, self.config.max_http_body_bytes, charge)
        raise IngestError(
            ErrorKind.UNSUPPORTED_MEDIA_TYPE,
            f"unsupported Content-Encoding {encoding!r}; use gzip, deflate or none",
        )


def _declares_body(headers: Mapping[str, str]) -> bool:
    if "transfer-encoding" in headers:
        return True
    return headers.get("content-length", "0").strip() not in ("0", "")


def _media_type(content_type: str) -> str:
    # "application/json; charset=utf-8" -> "application/json"
    return content_type.partition(";")[0].strip().lower()


def _too_large(limit: int) -> IngestError:
    return IngestError(ErrorKind.TOO_LARGE, f"request body larger than {limit} bytes")


def _read_chunked(reader: BodyReader, limit: int, charge: Charge) -> bytes:
    """Undo ``Transfer-Encoding: chunked`` (RFC 9112 section 7.1), refusing over ``limit``."""
    parts: list[bytes] = []
    total = 0
    while True:
        line = reader.readline(1024)
        if not line.endswith(b"\n"):
            raise IngestError(ErrorKind.BAD_REQUEST, "truncated chunked body")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise IngestError(ErrorKind.BAD_REQUEST, "bad chunk size line") from None
        if size < 0:
            raise IngestError(ErrorKind.BAD_REQUEST, "bad chunk size line")
        if size == 0:
            # Trailer fields, if any, then the empty line that ends the body.
            while True:
                trailer = reader.readline(8192)
                if trailer in (b"\r\n", b"\n", b""):
                    return b"".join(parts)
        total += size
        if total > limit:
            raise _too_large(limit)
        charge.grow(size)
        chunk = reader.read(size)
        if len(chunk) != size or reader.readline(8) not in (b"\r\n", b"\n"):
            raise IngestError(ErrorKind.BAD_REQUEST, "truncated chunked body")
        parts.append(chunk)


def _inflate(data: bytes, wbits: int, limit: int, charge: Charge) -> bytes:
    """Decompress, stopping as soon as the output passes ``limit``.

    zlib's ``max_length`` bounds each step's output, so a gzip bomb (kilobytes that
    inflate to gigabytes) costs at most ``limit`` bytes of memory and the time to
    produce them. Concatenated gzip members (RFC 1952) are all decompressed.
    """
    parts: list[bytes] = []
    total = 0
    pending = data
    try:
        while True:
            inflater = zlib.decompressobj(wbits)
            tail = pending
            while True:
                piece = inflater.decompress(tail, _INFLATE_CHUNK)
                total += len(piece)
                if total > limit:
                    raise IngestError(
                        ErrorKind.TOO_LARGE, f"decompressed body larger than {limit} bytes"
                    )
                charge.grow(len(piece))
                parts.append(piece)
                tail = inflater.unconsumed_tail
                # A full output chunk may leave output buffered inside zlib: go round again.
                if not tail and (len(piece) < _INFLATE_CHUNK or inflater.eof):
                    break
            if not inflater.eof:
                raise IngestError(ErrorKind.BAD_REQUEST, "compressed body is truncated")
            pending = inflater.unused_data
            if not pending:
                return b"".join(parts)
    except zlib.error as exc:
        raise IngestError(ErrorKind.BAD_REQUEST, f"corrupt compressed body: {exc}") from None


def _encode_response(response: Message, media: str) -> bytes:
    if media == PROTOBUF:
        body: bytes = response.SerializeToString()
        return body
    if not response.HasField("partial_success"):
        return b"{}"
    # MessageToDict writes int64 as a string ("rejectedSpans": "3"), as OTLP/JSON does.
    return orjson.dumps(json_format.MessageToDict(response))


# ---------------------------------------------------------------------------- the server


class _Connections:
    """Which connections are open and which are inside a request, for a graceful stop."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._open: dict[socket.socket, bool] = {}  # socket -> busy
        self.stopping = False

    def opened(self, sock: socket.socket) -> None:
        with self._cond:
            self._open[sock] = False

    def closed(self, sock: socket.socket) -> None:
        with self._cond:
            self._open.pop(sock, None)
            self._cond.notify_all()

    def set_busy(self, sock: socket.socket, busy: bool) -> bool:
        """Mark a connection busy or idle; returns False when the server is stopping."""
        with self._cond:
            if sock in self._open:
                self._open[sock] = busy
            self._cond.notify_all()
            return not self.stopping

    def drain(self, grace: float) -> None:
        deadline = time.monotonic() + grace
        with self._cond:
            self.stopping = True
            while True:
                # Idle keep-alive connections are waiting for a request line: wake them.
                for sock, busy in list(self._open.items()):
                    if not busy:
                        _shutdown(sock)
                left = deadline - time.monotonic()
                if not any(self._open.values()) or left <= 0:
                    break
                self._cond.wait(min(left, 0.05))
            for sock in list(self._open):
                _shutdown(sock)
            # Give the handler threads a moment to notice and unregister.
            end = time.monotonic() + 1.0
            while self._open and time.monotonic() < end:
                self._cond.wait(0.05)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: OtlpHttpHandler,
        tls: ssl.SSLContext | None,
        idle_timeout: float,
        max_connections: int,
        thread_niceness: int = 0,
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.otlp = handler
        self.tls = tls
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.thread_niceness = thread_niceness
        self.connections = _Connections()
        self._active = 0
        self._active_lock = threading.Lock()
        super().__init__(address, _RequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        # One thread per connection: cap them, so a flood of (slow) clients cannot
        # exhaust threads and memory. Over the cap a connection is closed at once
        # (plain HTTP gets a 503 first, which exporters retry).
        with self._active_lock:
            full = self._active >= self.max_connections
            if not full:
                self._active += 1
        if full:
            if self.tls is None:
                with contextlib.suppress(OSError):
                    request.sendall(_OVERLOADED)
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            lower_thread_priority(self.thread_niceness)  # the connection's own thread
            super().process_request_thread(request, client_address)
        finally:
            with self._active_lock:
                self._active -= 1

    def finish_request(self, request: Any, client_address: Any) -> None:
        # Runs on the connection's own thread, so a slow TLS handshake stalls only it.
        request.settimeout(self.idle_timeout)
        # Headers and body go out in two writes; without NODELAY, Nagle's algorithm and
        # the client's delayed ACK add ~40 ms to every answer with a body.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = request
        if self.tls is not None:
            try:
                connection = self.tls.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError) as exc:
                log.debug("TLS handshake with %s failed: %s", client_address, exc)
                return
        self.connections.opened(connection)
        try:
            super().finish_request(connection, client_address)
        finally:
            self.connections.closed(connection)
            if connection is not request:
                # wrap_socket took over the descriptor; the caller's shutdown_request
                # only sees the husk, so close the TLS socket here.
                _shutdown(connection)
                connection.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class _RequestHandler(AnswerHandler):
    server: _Server

    def _dispatch(self) -> None:
        connections = self.server.connections
        running = connections.set_busy(self.connection, True)
        try:
            answer = self.server.otlp.handle(
                self.command, self.path, self.headers.items(), self.rfile
            )
            self.send_answer(answer, close=not running)
        finally:
            if not connections.set_busy(self.connection, False):
                self.close_connection = True

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch


class HttpReceiver:
    """The OTLP/HTTP listener; ``start()`` binds and returns the bound address."""

    def __init__(self, config: ReceiverConfig, ingest: Ingest) -> None:
        self.config = config
        self.handler = OtlpHttpHandler(ingest)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.address: str | None = None

    def start(self) -> str:
        config = self.config
        assert config.http_port is not None
        tls = None
        if config.tls_cert is not None and config.tls_key is not None:
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(config.tls_cert, config.tls_key)
        try:
            server = _Server(
                (config.host, config.http_port),
                self.handler,
                tls,
                config.http_idle_timeout,
                config.http_max_connections,
                config.thread_niceness,
            )
        except OSError as exc:
            target = format_address(config.host, config.http_port)
            raise OSError(f"otlp-http: cannot listen on {target}: {exc.strerror or exc}") from None
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="otlp-http",
            daemon=True,
        )
        self._thread.start()
        self.address = format_address(config.host, server.server_address[1])
        log.info("otlp-http listening on %s", self.address)
        return self.address

    def stop(self, grace: float) -> None:
        """Stop accepting, let requests in progress finish for up to ``grace`` seconds,
        then close every connection."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()  # the accept loop ends
        server.server_close()  # the listening socket closes: new connections are refused
        server.connections.drain(grace)
        if self._thread is not None:
            self._thread.join()

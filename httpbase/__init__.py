"""What every seqtrace HTTP server shares: the OTLP/HTTP receiver (collector) and the query
API (seqtrace.api) both stand on it.

* :class:`Answer`: a complete answer (status, headers, body, and whether the connection
  must close because the request body was not read to its end);
* :class:`BearerToken`: a token compared in constant time, its length not leaked;
* :func:`error_body` / :func:`internal_error`: the one error renderer (``{"error": str}``)
  and the one message for an unexpected exception, which names its type and never carries
  its text (that may quote a query, a path or a span: it goes to the log, not the client);
* :class:`AnswerHandler`: a ``BaseHTTPRequestHandler`` that sends an :class:`Answer` with
  HTTP/1.1 keep-alive, and lingers before closing a connection whose body is unread.

A server adds a route by returning an :class:`Answer` for a (method, path); nothing here
knows the routes. This package imports nothing of seqtrace's (the import-linter contract in
pyproject.toml keeps it so), so both layers above may use it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, Final

__all__ = [
    "JSON_CONTENT_TYPE",
    "Answer",
    "AnswerHandler",
    "BearerToken",
    "error_answer",
    "error_body",
    "internal_error",
    "linger",
]

log = logging.getLogger(__name__)

JSON_CONTENT_TYPE: Final = "application/json"
#: Bounds on draining an unread request body before closing (see :func:`linger`).
LINGER_SECONDS: Final = 2.0
LINGER_BYTES: Final = 64 << 20


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    #: True when the request body was not read to its end: the connection is out of
    #: step with the client and must be closed after this answer.
    close: bool = False


# --------------------------------------------------------------------------- errors


def error_body(message: str) -> bytes:
    """The body of every query-API error: ``{"error": "<one line>"}`` (SPEC)."""
    return json.dumps({"error": message}).encode()


def error_answer(status: int, message: str, *headers: tuple[str, str]) -> Answer:
    """A JSON error answer; ``message`` is ours (never an exception's text)."""
    return Answer(status, (("Content-Type", JSON_CONTENT_TYPE), *headers), error_body(message))


def internal_error(exc: BaseException) -> str:
    """What a client is told about an unexpected exception: its type, not its text."""
    return f"internal error ({type(exc).__name__})"


# --------------------------------------------------------------------------- tokens


class BearerToken:
    """A bearer token to check ``Authorization`` values against.

    Only a hash of ``Bearer <token>`` is kept: the token itself is never compared byte by
    byte (timing) nor put in any message or log line, and hashing both sides first hides
    its length too. The scheme is case-insensitive (RFC 7235), the token is not.
    """

    __slots__ = ("_expected",)

    def __init__(self, token: str) -> None:
        self._expected = hashlib.sha256(f"bearer {token}".encode()).digest()

    def matches(self, authorization: str | None) -> bool:
        scheme, _, credentials = (authorization or "").strip().partition(" ")
        given = hashlib.sha256(f"{scheme.lower()} {credentials.strip()}".encode()).digest()
        return hmac.compare_digest(given, self._expected)


# --------------------------------------------------------------------------- serving


def linger(connection: socket.socket, rfile: Any) -> None:
    """Read and drop what the client is still sending, then let the connection close.

    Closing a socket with unread input makes the kernel send a reset, and a client still
    busy writing its body then sees "connection reset" instead of our 413 or 401.
    Half-closing and draining for a bounded time and amount lets it read the answer (as
    Go's net/http and nginx's lingering_close do).
    """
    try:
        connection.shutdown(socket.SHUT_WR)
        connection.settimeout(LINGER_SECONDS)
        deadline = time.monotonic() + LINGER_SECONDS
        drained = 0
        while drained < LINGER_BYTES and time.monotonic() < deadline:
            chunk = rfile.read1(65536)
            if not chunk:
                break
            drained += len(chunk)
    except (OSError, ValueError):
        pass


class AnswerHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive, ``Server: seqtrace``, access lines at debug level, and
    :meth:`send_answer`. Subclasses map their ``do_*`` methods to a dispatcher."""

    protocol_version = "HTTP/1.1"

    def version_string(self) -> str:
        return "seqtrace"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def send_answer(self, answer: Answer, *, close: bool = False) -> None:
        """Send ``answer``; close the connection afterwards when the answer says so (its
        body was not read: linger first) or ``close`` is set (the server is stopping)."""
        self.send_response(answer.status)
        for name, value in answer.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        if answer.close or close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)
        self.wfile.flush()
        if answer.close:
            linger(self.connection, self.rfile)

"""What both receivers do with a decoded request: authorise, store, answer.

No code here looks at individual spans: the store validates and counts them, so a
receiver's cost per request does not grow with the attributes it carries.
"""

from __future__ import annotations

import hmac
import threading
from dataclasses import dataclass

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from collector.config import ReceiverConfig
from collector.errors import ErrorKind, IngestError, classify
from spanstore.base import SpanWriter

__all__ = ["Ingest", "IngestCounters"]

#: Partial-success messages name at most this many problems; the count is exact anyway.
_MAX_MESSAGES = 5
#: Never hand the store less time than this, even when the client's deadline is nearly
#: spent: a commit that is almost done is better finished than abandoned.
_MIN_WRITE_TIMEOUT = 0.05


@dataclass(frozen=True, slots=True)
class IngestCounters:
    requests: int
    spans_accepted: int
    spans_rejected: int
    failed_requests: int


class Ingest:
    """Shared by the gRPC and HTTP receivers (and any server that mounts the HTTP handler)."""

    def __init__(self, config: ReceiverConfig, writer: SpanWriter) -> None:
        self.config = config
        self.writer = writer
        self._token = (
            f"bearer {config.ingest_token}".encode() if config.ingest_token is not None else None
        )
        self._lock = threading.Lock()
        self._requests = 0
        self._accepted = 0
        self._rejected = 0
        self._failed = 0

    def authorize(self, authorization: str | None) -> None:
        """Raise UNAUTHENTICATED unless the Authorization value carries the ingest token."""
        if self._token is None:
            return
        given = (authorization or "").strip()
        scheme, _, credentials = given.partition(" ")
        # The scheme is case-insensitive (RFC 7235); the token is compared in constant time.
        candidate = f"{scheme.lower()} {credentials.strip()}".encode()
        if not hmac.compare_digest(candidate, self._token):
            raise IngestError(
                ErrorKind.UNAUTHENTICATED,
                "missing or wrong ingest token (expected 'Authorization: Bearer <token>')",
            )

    def export(
        self, request: ExportTraceServiceRequest | bytes, time_left: float | None = None
    ) -> ExportTraceServiceResponse:
        """Store a request; returns once the store has committed it.

        ``request`` may be the serialized protobuf, which the store parses itself (in a
        decoder process when it has one), so the receiver's thread does no per-span work.

        ``time_left`` is the client's remaining deadline in seconds, when it sent one.
        Raises :class:`IngestError` (already classified) on failure.
        """
        response = ExportTraceServiceResponse()
        if not (request if isinstance(request, bytes) else request.resource_spans):
            # OTLP: an empty request is valid and answered with success.
            return response
        timeout = self.config.write_timeout
        if time_left is not None:
            timeout = max(_MIN_WRITE_TIMEOUT, min(timeout, time_left))
        try:
            result = self.writer.write(request, timeout)
        except Exception as exc:
            with self._lock:
                self._requests += 1
                self._failed += 1
            raise classify(exc, self.config.retry_after_seconds) from exc
        with self._lock:
            self._requests += 1
            self._accepted += result.accepted
            self._rejected += result.rejected
        if result.rejected:
            messages = list(result.messages[:_MAX_MESSAGES])
            if len(result.messages) > _MAX_MESSAGES:
                messages.append(f"and {len(result.messages) - _MAX_MESSAGES} more")
            response.partial_success.rejected_spans = result.rejected
            response.partial_success.error_message = "; ".join(messages) or (
                f"{result.rejected} spans rejected as invalid"
            )
        return response

    def counters(self) -> IngestCounters:
        with self._lock:
            return IngestCounters(self._requests, self._accepted, self._rejected, self._failed)

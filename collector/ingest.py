"""What both receivers do with a decoded request: authorise, store, answer.

No code here looks at individual spans: the store validates and counts them, so a
receiver's cost per request does not grow with the attributes it carries.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from collector.config import ReceiverConfig
from collector.errors import ErrorKind, IngestError, classify
from httpbase import BearerToken
from spanstore.base import SpanWriter
from spanstore.budget import MemoryBudget

__all__ = ["Charge", "Ingest", "IngestCounters"]

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
    #: Requests refused because the receivers' memory budget was full.
    refused_requests: int = 0


class Charge:
    """What one request holds of the receivers' memory budget; grows as the body does."""

    __slots__ = ("_budget", "_ingest", "_wait_left", "bytes")

    def __init__(self, ingest: Ingest) -> None:
        self._ingest = ingest
        self._budget = ingest.budget
        #: One request waits at most ``admission_wait`` in all, however often it grows.
        self._wait_left = ingest.config.admission_wait
        self.bytes = 0

    def grow(self, nbytes: int, wait: float | None = None) -> None:
        """Charge ``nbytes`` more, waiting for room up to ``wait`` seconds and what is
        left of the request's ``admission_wait``; raise a retryable UNAVAILABLE when they
        do not fit."""
        if nbytes <= 0:
            return
        wait = self._wait_left if wait is None else min(wait, self._wait_left)
        started = time.monotonic()
        admitted = self._budget.try_charge(nbytes, held=self.bytes, wait=wait)
        self._wait_left = max(0.0, self._wait_left - (time.monotonic() - started))
        if not admitted:
            self._ingest.note_refused()
            raise IngestError(
                ErrorKind.UNAVAILABLE,
                "the collector is at its memory limit for requests in flight; retry later",
                self._ingest.config.retry_after_seconds,
            )
        self.bytes += nbytes

    def release(self) -> None:
        self._budget.release(self.bytes)
        self.bytes = 0


class Ingest:
    """Shared by the gRPC and HTTP receivers (and any server that mounts the HTTP handler)."""

    def __init__(
        self, config: ReceiverConfig, writer: SpanWriter, budget: MemoryBudget | None = None
    ) -> None:
        self.config = config
        self.writer = writer
        #: Bytes of request bodies held by the receivers (see ``max_inflight_bytes``).
        self.budget = budget if budget is not None else MemoryBudget(config.max_inflight_bytes)
        self._token = BearerToken(config.ingest_token) if config.ingest_token is not None else None
        self._lock = threading.Lock()
        self._requests = 0
        self._accepted = 0
        self._rejected = 0
        self._failed = 0
        self._refused = 0

    def charge(self) -> Charge:
        """A new, empty charge against the receivers' memory budget."""
        return Charge(self)

    def note_refused(self) -> None:
        with self._lock:
            self._refused += 1

    def authorize(self, authorization: str | None) -> None:
        """Raise UNAUTHENTICATED unless the Authorization value carries the ingest token."""
        if self._token is None:
            return
        if not self._token.matches(authorization):
            raise IngestError(
                ErrorKind.UNAUTHENTICATED,
                "missing or wrong ingest token (expected 'Authorization: Bearer <token>')",
            )

    def export(
        self, request: ExportTraceServiceRequest | bytes, time_left: float | None = None
    ) -> ExportTraceServiceResponse:
        """Store a request; returns once the store has made it durable (the journal's
        fsync), which is when the receiver may acknowledge it.

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
            return IngestCounters(
                self._requests, self._accepted, self._rejected, self._failed, self._refused
            )

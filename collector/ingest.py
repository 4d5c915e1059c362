"""What both receivers do with a decoded request: authorise, store, answer.

No code here looks at individual spans: the store validates and counts them, so a
receiver's cost per request does not grow with the attributes it carries.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from collector.config import ReceiverConfig
from collector.errors import ErrorKind, IngestError, classify
from httpbase import BearerToken
from spanstore.base import SpanWriter, StoreError, WriteResult
from spanstore.budget import MemoryBudget
from spanstore.logs import LogWriter

__all__ = ["METRICS_REFUSED", "Charge", "Ingest", "IngestCounters", "metric_data_points"]

METRICS_REFUSED: Final = (
    "seqtrace keeps traces and logs, not metrics: these data points were not stored"
)

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
    #: OTLP logs and metrics (collector/signals.py).
    logs_accepted: int = 0
    logs_rejected: int = 0
    metric_points_refused: int = 0


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
        self._logs_accepted = 0
        self._logs_rejected = 0
        self._metric_points = 0

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
        writer = self.writer
        result = self._written(lambda timeout: writer.write(request, timeout), time_left)
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

    def _written(
        self, write: Callable[[float], WriteResult], time_left: float | None
    ) -> WriteResult:
        """``write(timeout)`` within the client's remaining deadline; a failure is counted
        and raised as an :class:`IngestError`."""
        timeout = self.config.write_timeout
        if time_left is not None:
            timeout = max(_MIN_WRITE_TIMEOUT, min(timeout, time_left))
        try:
            return write(timeout)
        except Exception as exc:
            with self._lock:
                self._requests += 1
                self._failed += 1
            raise classify(exc, self.config.retry_after_seconds) from exc

    def counters(self) -> IngestCounters:
        with self._lock:
            return IngestCounters(
                self._requests,
                self._accepted,
                self._rejected,
                self._failed,
                self._refused,
                self._logs_accepted,
                self._logs_rejected,
                self._metric_points,
            )

    # -------------------------------------------------------- logs and metrics

    def export_logs(
        self, request: ExportLogsServiceRequest | bytes, time_left: float | None = None
    ) -> ExportLogsServiceResponse:
        """Store a logs request; returns once the store has it durably (as ``export``)."""
        response = ExportLogsServiceResponse()
        if not (request if isinstance(request, bytes) else request.resource_logs):
            return response
        writer = self.writer

        def write_logs(timeout: float) -> WriteResult:
            if not isinstance(writer, LogWriter):
                raise _NoLogStore("this store does not keep log records; the export is dropped")
            return writer.write_logs(request, timeout)

        result = self._written(write_logs, time_left)
        with self._lock:
            self._requests += 1
            self._logs_accepted += result.accepted
            self._logs_rejected += result.rejected
        if result.rejected:
            response.partial_success.rejected_log_records = result.rejected
            response.partial_success.error_message = "; ".join(result.messages[:_MAX_MESSAGES]) or (
                f"{result.rejected} log records rejected as invalid"
            )
        return response

    def export_metrics(
        self, request: ExportMetricsServiceRequest | bytes
    ) -> ExportMetricsServiceResponse:
        """Answer a metrics request: success, with every data point rejected (SPEC)."""
        points = metric_data_points(request)
        response = ExportMetricsServiceResponse()
        with self._lock:
            self._requests += 1
            self._metric_points += points
        if points:
            response.partial_success.rejected_data_points = points
            response.partial_success.error_message = METRICS_REFUSED
        return response


class _NoLogStore(StoreError):
    """The store cannot keep logs: retrying will not help (500 / INTERNAL)."""

    retryable = False


def metric_data_points(request: ExportMetricsServiceRequest | bytes) -> int:
    """How many data points a metrics request carries (all of them are refused).

    Raises :class:`IngestError` (400) when the bytes are not a metrics request."""
    if isinstance(request, bytes):
        try:
            parsed: ExportMetricsServiceRequest = ExportMetricsServiceRequest.FromString(request)
        except Exception as exc:  # upb's DecodeError
            raise IngestError(
                ErrorKind.BAD_REQUEST, f"malformed protobuf ExportMetricsServiceRequest: {exc}"
            ) from None
    else:
        parsed = request
    points = 0
    for resource_metrics in parsed.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                if kind is not None:
                    points += len(getattr(metric, kind).data_points)
    return points

"""The one place where failures become protocol answers.

Every receiver turns what went wrong into an :class:`IngestError` of some
:class:`ErrorKind`; the kind fixes the HTTP status, the gRPC code and whether a client may
retry. This follows the OpenTelemetry Collector's receivers: bad input is permanent (400 /
INVALID_ARGUMENT, the exporter drops the data), a store that cannot take data now is
retryable (503 + Retry-After / UNAVAILABLE + ``google.rpc.RetryInfo``), and a store that
failed for good is 500 / INTERNAL. Error bodies are ``google.rpc.Status`` messages.
"""

from __future__ import annotations

import enum
import logging
import random
from dataclasses import dataclass

import grpc
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

from httpbase import internal_error
from spanstore.base import InvalidRequest, StoreError
from spanstore.otlp import OtlpJsonError

__all__ = ["ErrorKind", "IngestError", "classify", "grpc_status", "http_error_body", "rpc_status"]

log = logging.getLogger(__name__)

JSON = "application/json"
PROTOBUF = "application/x-protobuf"


class ErrorKind(enum.Enum):
    """What went wrong, as both protocols say it: (HTTP status, gRPC code, retryable)."""

    BAD_REQUEST = (400, grpc.StatusCode.INVALID_ARGUMENT, False)
    UNAUTHENTICATED = (401, grpc.StatusCode.UNAUTHENTICATED, False)
    NOT_FOUND = (404, grpc.StatusCode.UNIMPLEMENTED, False)
    METHOD_NOT_ALLOWED = (405, grpc.StatusCode.UNIMPLEMENTED, False)
    LENGTH_REQUIRED = (411, grpc.StatusCode.INVALID_ARGUMENT, False)
    TOO_LARGE = (413, grpc.StatusCode.RESOURCE_EXHAUSTED, False)
    UNSUPPORTED_MEDIA_TYPE = (415, grpc.StatusCode.INVALID_ARGUMENT, False)
    UNAVAILABLE = (503, grpc.StatusCode.UNAVAILABLE, True)
    INTERNAL = (500, grpc.StatusCode.INTERNAL, False)

    @property
    def http_status(self) -> int:
        status: int = self.value[0]
        return status

    @property
    def grpc_code(self) -> grpc.StatusCode:
        code: grpc.StatusCode = self.value[1]
        return code

    @property
    def retryable(self) -> bool:
        retryable: bool = self.value[2]
        return retryable


class IngestError(Exception):
    """A request that cannot be accepted, with the kind that decides the answer."""

    def __init__(self, kind: ErrorKind, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        #: Seconds to wait before retrying; only meaningful for retryable kinds.
        self.retry_after = retry_after if kind.retryable else None


def classify(exc: BaseException, retry_after: int) -> IngestError:
    """Map an exception raised while decoding or storing a request to its answer."""
    if isinstance(exc, IngestError):
        return exc
    if isinstance(exc, OtlpJsonError | DecodeError | UnicodeDecodeError | InvalidRequest):
        return IngestError(ErrorKind.BAD_REQUEST, f"malformed request: {exc}")
    if isinstance(exc, TimeoutError):
        return IngestError(
            ErrorKind.UNAVAILABLE, "the store did not commit in time; retry later", retry_after
        )
    if isinstance(exc, StoreError):
        if exc.retryable:
            return IngestError(
                ErrorKind.UNAVAILABLE, f"store unavailable: {exc}; retry later", retry_after
            )
        return IngestError(ErrorKind.INTERNAL, f"store error: {exc}")
    # Anything else is our bug: log it with its traceback, tell the client only that
    # it happened (no internals in the answer) and that retrying will not help.
    log.error("unexpected error while ingesting", exc_info=exc)
    return IngestError(ErrorKind.INTERNAL, internal_error(exc))


def rpc_status(err: IngestError) -> status_pb2.Status:
    """The ``google.rpc.Status`` for an error, with ``RetryInfo`` when it is retryable."""
    status = status_pb2.Status(code=err.kind.grpc_code.value[0], message=err.message)
    if err.retry_after is not None:
        info = error_details_pb2.RetryInfo()
        info.retry_delay.seconds = err.retry_after
        status.details.add().Pack(info)
    return status


def http_error_body(err: IngestError, content_type: str) -> bytes:
    """The Status body in the request's encoding (JSON unless it was protobuf)."""
    status = rpc_status(err)
    if content_type == PROTOBUF:
        body: bytes = status.SerializeToString()
        return body
    text: str = json_format.MessageToJson(status, indent=None)
    return text.encode()


@dataclass(frozen=True, slots=True)
class _GrpcStatus(grpc.Status):  # type: ignore[misc]
    """grpc's Status interface (what grpcio-status builds), for ``abort_with_status``."""

    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, bytes], ...]


def grpc_status(err: IngestError) -> grpc.Status:
    """A grpc Status carrying the ``google.rpc.Status`` in ``grpc-status-details-bin``,
    where OTLP exporters look for ``RetryInfo``."""
    status = rpc_status(err)
    trailers: tuple[tuple[str, bytes], ...] = (
        ("grpc-status-details-bin", status.SerializeToString()),
    )
    if err.retry_after is not None:
        # The Python SDK's exporter reads RetryInfo from this key instead of the status
        # details; sending both makes every exporter wait as long as we ask. A little
        # jitter (under a second) keeps refused exporters from coming back in lockstep.
        info = error_details_pb2.RetryInfo()
        info.retry_delay.seconds = err.retry_after
        info.retry_delay.nanos = random.randrange(0, 1_000_000_000)
        trailers += (("google.rpc.retryinfo-bin", info.SerializeToString()),)
    return _GrpcStatus(code=err.kind.grpc_code, details=err.message, trailing_metadata=trailers)

"""OTLP exporters for `seqtrace replay`: gRPC and HTTP/protobuf, with an SDK's retry rules.

Retryable answers (OTLP specification, "Failures" and "OTLP/HTTP Throttling"): gRPC
UNAVAILABLE, CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, DATA_LOSS, and
RESOURCE_EXHAUSTED when the server sends ``RetryInfo``; HTTP 429, 502, 503, 504; a
connection that cannot be made or breaks. They are sent again after the server's
``RetryInfo`` / ``Retry-After`` delay, or else an exponential backoff with jitter (1 s,
2 s, 4 s ... capped at 32 s), until ``max_retry_seconds`` have passed for one request.
Anything else (401, 400, 413, UNAUTHENTICATED, INVALID_ARGUMENT, ...) is permanent:
:class:`ExportRefused` is raised at once and the replay stops.
"""

from __future__ import annotations

import http.client
import random
import ssl
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

__all__ = ["ExportRefused", "Exporter", "ExporterOptions", "make_exporter"]

#: How long one request may wait per attempt.
REQUEST_TIMEOUT_S = 30.0
#: Backoff without a server hint: 1 s, doubling, capped (as the SDK exporters do).
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 32.0
_RETRYABLE_HTTP = frozenset({429, 502, 503, 504})

Answer = TypeVar("Answer")


class ExportRefused(Exception):
    """The endpoint refused a request for good (or kept refusing past the retry time);
    the message is one line naming the endpoint and what it said."""


class _Retry(Exception):
    def __init__(self, reason: str, delay: float | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


@dataclass(frozen=True)
class ExporterOptions:
    endpoint: str
    protocol: str = "grpc"  # or "http"
    token: str | None = None
    headers: Sequence[tuple[str, str]] = ()
    insecure: bool = False
    ca_file: str | None = None
    max_retry_seconds: float = 300.0


class Exporter:
    """Sends trace and log requests; safe to call from several threads."""

    def __init__(self, options: ExporterOptions) -> None:
        self.options = options
        self.retries = 0  # answers that were retried (backpressure seen), for the summary
        self._lock = threading.Lock()

    def export_spans(self, request: ExportTraceServiceRequest) -> tuple[int, str]:
        """Send one request; (rejected spans, the server's message) from partial success."""
        answer = self._with_retries("spans", lambda: self._send_spans(request.SerializeToString()))
        return answer.partial_success.rejected_spans, answer.partial_success.error_message

    def export_logs(self, request: ExportLogsServiceRequest) -> tuple[int, str]:
        answer = self._with_retries("logs", lambda: self._send_logs(request.SerializeToString()))
        return answer.partial_success.rejected_log_records, answer.partial_success.error_message

    def close(self) -> None:
        pass

    # -- per protocol
    def _send_spans(self, body: bytes) -> ExportTraceServiceResponse:
        raise NotImplementedError

    def _send_logs(self, body: bytes) -> ExportLogsServiceResponse:
        raise NotImplementedError

    def _with_retries(self, what: str, attempt: Callable[[], Answer]) -> Answer:
        deadline = time.monotonic() + self.options.max_retry_seconds
        backoff = BACKOFF_FIRST_S
        while True:
            try:
                return attempt()
            except _Retry as retry:
                delay = (
                    retry.delay if retry.delay is not None else backoff * random.uniform(0.8, 1.2)
                )
                backoff = min(BACKOFF_MAX_S, backoff * 2)
                if time.monotonic() + delay > deadline:
                    raise ExportRefused(
                        f"{self.options.endpoint} kept refusing the {what} for "
                        f"{self.options.max_retry_seconds:g} s ({retry.reason}); "
                        "see --max-retry-time"
                    ) from None
                with self._lock:
                    self.retries += 1
                    first = self.retries == 1
                if first:  # say why it waits: a wrong port would otherwise look like a hang
                    print(
                        f"seqtrace: replay: {self.options.endpoint} answered {retry.reason}; "
                        f"retrying for up to {self.options.max_retry_seconds:g} s "
                        "(--max-retry-time)",
                        file=sys.stderr,
                        flush=True,
                    )
                time.sleep(max(0.0, delay))


# ------------------------------------------------------------------------------ gRPC


class _GrpcExporter(Exporter):
    def __init__(self, options: ExporterOptions) -> None:
        super().__init__(options)
        import grpc

        parsed = urllib.parse.urlsplit(
            options.endpoint if "://" in options.endpoint else f"//{options.endpoint}"
        )
        if not parsed.hostname or parsed.path not in ("", "/"):
            raise ValueError(
                f"--endpoint: {options.endpoint!r} is not a gRPC endpoint; give "
                "http(s)://HOST:PORT, e.g. http://127.0.0.1:4317"
            )
        host = f"[{parsed.hostname}]" if ":" in parsed.hostname else parsed.hostname
        target = f"{host}:{parsed.port or 4317}"
        tls = (parsed.scheme == "https" or options.ca_file is not None) and not options.insecure
        channel_options = [
            ("grpc.max_send_message_length", 64 << 20),
            ("grpc.max_receive_message_length", 64 << 20),
        ]
        if tls:
            root = None
            if options.ca_file:
                try:
                    with open(options.ca_file, "rb") as handle:
                        root = handle.read()
                except OSError as exc:
                    raise ValueError(
                        f"--ca-file: cannot read {options.ca_file}: {exc.strerror}"
                    ) from None
            credentials = grpc.ssl_channel_credentials(root_certificates=root)
            self._channel = grpc.secure_channel(target, credentials, channel_options)
        else:
            self._channel = grpc.insecure_channel(target, channel_options)
        # Raw bytes in, parsed answer out: the request is serialised once, by the caller.
        self._trace_call = self._channel.unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            request_serializer=None,
            response_deserializer=ExportTraceServiceResponse.FromString,
        )
        self._logs_call = self._channel.unary_unary(
            "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
            request_serializer=None,
            response_deserializer=ExportLogsServiceResponse.FromString,
        )
        metadata = [(k.lower(), v) for k, v in options.headers]
        if options.token:
            metadata.append(("authorization", f"Bearer {options.token}"))
        self._metadata = tuple(metadata)

    def close(self) -> None:
        self._channel.close()

    def _call(self, call: Any, body: bytes) -> Any:
        import grpc

        try:
            return call(body, timeout=REQUEST_TIMEOUT_S, metadata=self._metadata)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
            details = (exc.details() if hasattr(exc, "details") else "") or ""
            delay = _grpc_retry_delay(exc)
            name = code.name if code is not None else "UNKNOWN"
            reason = f"{name}: {details}".rstrip(": ")
            retryable = {
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.CANCELLED,
                grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.StatusCode.ABORTED,
                grpc.StatusCode.OUT_OF_RANGE,
                grpc.StatusCode.DATA_LOSS,
            }
            if code in retryable or (code == grpc.StatusCode.RESOURCE_EXHAUSTED and delay):
                raise _Retry(reason, delay) from None
            hint = "; give --token TOKEN" if code == grpc.StatusCode.UNAUTHENTICATED else ""
            raise ExportRefused(
                f"{self.options.endpoint} refused the request: {reason}{hint}"
            ) from None

    def _send_spans(self, body: bytes) -> ExportTraceServiceResponse:
        answer: ExportTraceServiceResponse = self._call(self._trace_call, body)
        return answer

    def _send_logs(self, body: bytes) -> ExportLogsServiceResponse:
        answer: ExportLogsServiceResponse = self._call(self._logs_call, body)
        return answer


def _grpc_retry_delay(exc: Any) -> float | None:
    """The server's ``google.rpc.RetryInfo`` delay in seconds, if it sent one."""
    from google.protobuf.message import DecodeError
    from google.rpc import error_details_pb2, status_pb2

    try:
        trailers = exc.trailing_metadata() or ()
    except Exception:  # a local error (connection refused) carries no trailers
        return None
    for key, value in trailers:
        try:
            if key == "grpc-status-details-bin":
                status = status_pb2.Status.FromString(value)
                for detail in status.details:
                    if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                        info = error_details_pb2.RetryInfo()
                        detail.Unpack(info)
                        return float(info.retry_delay.seconds + info.retry_delay.nanos / 1e9)
            elif key == "google.rpc.retryinfo-bin":
                info = error_details_pb2.RetryInfo.FromString(value)
                return float(info.retry_delay.seconds + info.retry_delay.nanos / 1e9)
        except DecodeError:  # a malformed detail is no hint; back off by ourselves
            continue
    return None


# ------------------------------------------------------------------------------ HTTP


class _HttpExporter(Exporter):
    def __init__(self, options: ExporterOptions) -> None:
        super().__init__(options)
        parsed = urllib.parse.urlsplit(options.endpoint)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(
                f"--endpoint: {options.endpoint!r} is not an OTLP/HTTP URL; give "
                "http(s)://HOST:PORT, e.g. http://127.0.0.1:4318"
            )
        self._https = parsed.scheme == "https"
        self._host = parsed.hostname
        self._port = parsed.port or (443 if self._https else 80)
        base = parsed.path.rstrip("/")
        # Like OTEL_EXPORTER_OTLP_ENDPOINT: a base URL gains /v1/traces and /v1/logs; a
        # URL that already names /v1/traces is used as it is (its sibling for logs).
        if base.endswith("/v1/traces"):
            base = base.removesuffix("/v1/traces")
        self._paths = {"spans": f"{base}/v1/traces", "logs": f"{base}/v1/logs"}
        self._tls: ssl.SSLContext | None = None
        if self._https:
            try:
                self._tls = ssl.create_default_context(cafile=options.ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(f"--ca-file: cannot use {options.ca_file}: {exc}") from None
            if options.insecure:
                self._tls.check_hostname = False
                self._tls.verify_mode = ssl.CERT_NONE
        self._headers = {"Content-Type": "application/x-protobuf"}
        self._headers.update(dict(options.headers))
        if options.token:
            self._headers["Authorization"] = f"Bearer {options.token}"
        self._local = threading.local()  # one keep-alive connection per sending thread

    def _connection(self) -> http.client.HTTPConnection:
        con: http.client.HTTPConnection | None = getattr(self._local, "con", None)
        if con is None:
            if self._https:
                con = http.client.HTTPSConnection(
                    self._host, self._port, timeout=REQUEST_TIMEOUT_S, context=self._tls
                )
            else:
                con = http.client.HTTPConnection(self._host, self._port, timeout=REQUEST_TIMEOUT_S)
            self._local.con = con
        return con

    def _post(self, what: str, body: bytes) -> bytes:
        con = self._connection()
        try:
            con.request("POST", self._paths[what], body=body, headers=self._headers)
            response = con.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            con.close()
            self._local.con = None
            if isinstance(exc, ssl.SSLCertVerificationError):
                raise ExportRefused(
                    f"{self.options.endpoint}: TLS certificate not trusted ({exc.verify_message});"
                    " give --ca-file FILE (or --insecure)"
                ) from None
            raise _Retry(f"{type(exc).__name__}: {exc}", None) from None
        if response.getheader("Connection", "").lower() == "close":
            con.close()
            self._local.con = None
        if response.status == 200:
            return data
        detail = _http_detail(data, response.getheader("Content-Type", ""))
        reason = f"{response.status} {response.reason}" + (f": {detail}" if detail else "")
        if response.status in _RETRYABLE_HTTP:
            raise _Retry(reason, _retry_after(response.getheader("Retry-After")))
        hint = "; give --token TOKEN" if response.status == 401 else ""
        raise ExportRefused(f"{self.options.endpoint} refused the request: {reason}{hint}")

    def _send_spans(self, body: bytes) -> ExportTraceServiceResponse:
        answer = ExportTraceServiceResponse()
        answer.ParseFromString(self._post("spans", body))
        return answer

    def _send_logs(self, body: bytes) -> ExportLogsServiceResponse:
        answer = ExportLogsServiceResponse()
        answer.ParseFromString(self._post("logs", body))
        return answer


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _http_detail(data: bytes, content_type: str) -> str:
    """The server's error message: a google.rpc.Status (protobuf or JSON) or short text."""
    from google.rpc import status_pb2

    text = ""
    if "protobuf" in content_type:
        try:
            text = status_pb2.Status.FromString(data).message
        except Exception:
            text = ""
    if not text:
        raw = data[:300].decode("utf-8", "replace")
        try:
            import json

            parsed = json.loads(data)
            text = str(parsed.get("message") or parsed.get("error") or raw)
        except (ValueError, AttributeError):
            text = raw
    return " ".join(text.split())[:200]


def make_exporter(options: ExporterOptions) -> Exporter:
    if options.protocol == "grpc":
        return _GrpcExporter(options)
    if options.protocol == "http":
        return _HttpExporter(options)
    raise ValueError(f"--protocol: {options.protocol!r}; use grpc or http")

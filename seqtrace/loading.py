"""`seqtrace load`: trace files into a running server, or straight into a database file."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from typing import TYPE_CHECKING

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from seqtrace.errors import EXIT_OK, UsageError
from seqtrace.stores import DEFAULT_API

if TYPE_CHECKING:
    from spanstore.urls import StoreURL

#: Requests larger than this are split by resource so no request nears the 20 MiB limit.
MAX_REQUEST_BYTES = 8 << 20
#: A busy server answers 503/429 + Retry-After (backpressure): wait and send again, up to
#: this many times per request.
MAX_RETRIES = 30
_RETRYABLE = (429, 502, 503, 504)


def _split(request: ExportTraceServiceRequest) -> Iterable[ExportTraceServiceRequest]:
    if request.ByteSize() <= MAX_REQUEST_BYTES or len(request.resource_spans) <= 1:
        yield request
        return
    for resource_spans in request.resource_spans:
        part = ExportTraceServiceRequest()
        part.resource_spans.append(resource_spans)
        yield part


def _otlp_http_request(
    api: str, path: str, request: Message, token: str | None
) -> urllib.request.Request:
    """An OTLP/HTTP protobuf export of ``request`` to the server's ``path`` route."""
    http_request = urllib.request.Request(
        f"{api.rstrip('/')}{path}",
        data=request.SerializeToString(),
        method="POST",
        headers={"Content-Type": "application/x-protobuf"},
    )
    if token:
        http_request.add_header("Authorization", f"Bearer {token}")
    return http_request


def _post(api: str, token: str | None, request: ExportTraceServiceRequest) -> tuple[int, str]:
    """Send one request to the server's OTLP/HTTP route; returns (rejected, message)."""
    http_request = _otlp_http_request(api, "/v1/traces", request, token)
    for attempt in range(MAX_RETRIES + 1):
        try:
            with urllib.request.urlopen(http_request, timeout=60) as response:
                answer = ExportTraceServiceResponse.FromString(response.read())
            break
        except urllib.error.HTTPError as exc:
            detail = _error_detail(exc)
            if exc.code in _RETRYABLE and attempt < MAX_RETRIES:
                time.sleep(_retry_after(exc.headers.get("Retry-After"), attempt))
                continue
            raise UsageError(
                f"the server at {api} refused the spans ({exc.code}): {detail}"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            # A busy server may close the connection while the body is still being sent
            # (it answered 503 before reading it): send again; a refused one is down.
            if isinstance(reason, ConnectionResetError | BrokenPipeError) and (
                attempt < MAX_RETRIES
            ):
                time.sleep(_retry_after(None, min(attempt, 4)))
                continue
            raise UsageError(f"cannot reach the server at {api}: {reason}") from None
    partial = answer.partial_success
    return partial.rejected_spans, partial.error_message


def _post_logs(api: str, token: str | None, request: ExportLogsServiceRequest) -> int:
    """Send one logs request to the server's OTLP/HTTP route; returns the records taken."""
    http_request = _otlp_http_request(api, "/v1/logs", request, token)
    try:
        with urllib.request.urlopen(http_request, timeout=60) as response:
            answer = ExportLogsServiceResponse.FromString(response.read())
    except urllib.error.HTTPError as exc:
        raise UsageError(
            f"the server at {api} refused the log records ({exc.code}): {_error_detail(exc)}"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        raise UsageError(
            f"cannot reach the server at {api}: {getattr(exc, 'reason', exc)}"
        ) from None
    total = sum(len(s.log_records) for r in request.resource_logs for s in r.scope_logs)
    rejected: int = answer.partial_success.rejected_log_records
    return total - rejected


def _error_detail(exc: urllib.error.HTTPError) -> str:
    """The message of an OTLP/HTTP error answer: a protobuf google.rpc.Status for our
    protobuf request (its bytes read as text show a stray length byte), else the text."""
    from google.protobuf.message import DecodeError
    from google.rpc import status_pb2

    body = exc.read()
    content_type = exc.headers.get("Content-Type", "") if exc.headers else ""
    detail = body[:300].decode("utf-8", "replace")
    if "protobuf" in content_type:
        with contextlib.suppress(DecodeError):
            detail = status_pb2.Status.FromString(body).message or detail
    if exc.code == 401:
        detail += "; give --ingest-token TOKEN (env SEQTRACE_INGEST_TOKEN)"
    return detail


def _retry_after(header: object, attempt: int) -> float:
    try:
        seconds = float(str(header or ""))
    except ValueError:
        seconds = 0.5 * 2**attempt
    return min(30.0, max(0.1, seconds))


def _server_running(api: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api.rstrip('/')}/healthz", timeout=1.5) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _duckdb_url(path: str) -> StoreURL:
    from spanstore.urls import StoreURL

    return StoreURL("duckdb", path=path)


def load_files(args: argparse.Namespace) -> int:
    from collector.files import LogFileFound, TraceFileError, read_log_file, read_trace_file
    from seqtrace.stores import StoreChoice, chosen_store, parsed_url
    from spanstore.base import StoreError
    from spanstore.config import IngestConfig, StoreConfig
    from spanstore.logs import LogWriter
    from spanstore.urls import open_store_url

    choice = chosen_store(args)  # first: --store with --db is an error whatever else is set
    requests: list[tuple[str, ExportTraceServiceRequest]] = []
    log_requests: list[tuple[str, ExportLogsServiceRequest]] = []  # OTLP/JSON logs files
    for path in args.files:
        try:
            try:
                for request in read_trace_file(path):
                    requests.extend((path, part) for part in _split(request))
            except LogFileFound:
                log_requests.extend((path, request) for request in read_log_file(path))
        except TraceFileError as exc:
            raise UsageError(str(exc)) from None
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None

    token = args.ingest_token or os.environ.get("SEQTRACE_INGEST_TOKEN") or None
    api = args.api or os.environ.get("SEQTRACE_API")
    if api is None and choice is None and _server_running(DEFAULT_API):
        api = DEFAULT_API
    sent = rejected = duplicates = records = 0
    if api:
        for path, request in requests:
            n = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
            bad, message = _post(api, token, request)
            sent += n - bad
            rejected += bad
            if bad:
                print(f"seqtrace: {path}: {bad} span(s) rejected: {message}", file=sys.stderr)
        for _path, log_request in log_requests:
            records += _post_logs(api, token, log_request)
        where = api
    else:
        if choice is None:
            choice = StoreChoice("seqtrace.duckdb", "--db")
        from seqtrace.config import FileConfig, config_path, load_config

        # Straight into a file: apply the configuration's entity keys and policies
        # (redaction, limits; the default limits without a file) as the server would.
        path = config_path(getattr(args, "config", None))
        file = load_config(path) if path else FileConfig()
        entity_keys, policy = file.entity_keys, file.policy().validate()
        # --db names a DuckDB file whatever it looks like; --store is a URL.
        target = parsed_url(choice.target) if choice.is_url else _duckdb_url(choice.target)
        try:
            ingest = IngestConfig(entity_keys=tuple(entity_keys), policy=policy)
            store = open_store_url(target, config=StoreConfig(ingest=ingest))
        except StoreError as exc:
            if choice.is_url:  # name the flag: the message may only name the host
                raise UsageError(f"--store: {exc}") from None
            raise UsageError(str(exc)) from None
        try:
            for path, request in requests:
                result = store.write(request)
                sent += result.accepted + result.duplicates
                duplicates += result.duplicates
                rejected += result.rejected
                if result.rejected:
                    print(
                        f"seqtrace: {path}: {result.rejected} span(s) rejected: "
                        + "; ".join(result.messages),
                        file=sys.stderr,
                    )
            for path, log_request in log_requests:
                if not isinstance(store, LogWriter):
                    raise UsageError(f"{path}: this store does not keep log records")
                records += store.write_logs(log_request).accepted
        finally:
            store.close()
        where = choice.describe()
    already = f" ({duplicates} of them already stored)" if duplicates else ""
    logs = f" and {records} log records" if log_requests else ""
    print(
        f"seqtrace: loaded {sent} spans{logs} from {len(args.files)} file(s) into {where}{already}"
    )
    if rejected:
        print(f"seqtrace: {rejected} span(s) were rejected", file=sys.stderr)
    return EXIT_OK

"""Helpers shared by the collector tests (no tests here).

The tests run the real receivers in front of the real DuckDBStore on a temp file; only
failure modes a real store cannot be driven into on demand use the small writers below.
"""

from __future__ import annotations

import http.client
import ssl
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.trace.v1 import trace_pb2

from collector import Collector, ReceiverConfig
from spanstore.base import SpanWriter, StoreError, WriteResult
from spanstore.duckdb_store import DuckDBStore

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@contextmanager
def open_store(tmp_path: Path, name: str = "spans.duckdb") -> Iterator[DuckDBStore]:
    store = DuckDBStore(tmp_path / name)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def running_collector(writer: SpanWriter, **settings: Any) -> Iterator[Collector]:
    config = ReceiverConfig(**{"grpc_port": 0, "http_port": 0, **settings})
    collector = Collector(config, writer)
    collector.start()
    try:
        yield collector
    finally:
        collector.stop(grace=2.0)


class FailingWriter:
    """A store that fails every write with a given error (a lock held, a disk full)."""

    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.calls = 0

    def write(
        self, request: ExportTraceServiceRequest, timeout: float | None = None
    ) -> WriteResult:
        self.calls += 1
        raise self.error

    def close(self) -> None:
        pass


class PermanentStoreError(StoreError):
    retryable = False


def trace_id(n: int) -> bytes:
    return n.to_bytes(16, "big")


def span_id(n: int) -> bytes:
    return n.to_bytes(8, "big")


def make_request(
    spans: int = 3, first: int = 1, service: str = "checkout", attrs: int = 2
) -> ExportTraceServiceRequest:
    """``spans`` valid spans of one trace, numbered from ``first``."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name").value.string_value = service
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "test-scope"
    for n in range(first, first + spans):
        span = scope_spans.spans.add()
        span.trace_id = trace_id(first)
        span.span_id = span_id(n)
        span.name = f"op-{n}"
        span.kind = trace_pb2.Span.SPAN_KIND_SERVER
        span.start_time_unix_nano = 1_700_000_000_000_000_000 + n * 1000
        span.end_time_unix_nano = span.start_time_unix_nano + 500
        for a in range(attrs):
            span.attributes.add(key=f"attr.{a}").value.string_value = f"value-{n}-{a}"
    return request


def span_count(request: ExportTraceServiceRequest) -> int:
    return sum(len(s.spans) for rs in request.resource_spans for s in rs.scope_spans)


def http_call(
    address: str,
    body: bytes | None,
    headers: Mapping[str, str] | None = None,
    method: str = "POST",
    path: str = "/v1/traces",
    tls: ssl.SSLContext | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn: http.client.HTTPConnection
    # http.client parses "host:port" itself, including "[::1]:port".
    if tls is not None:
        conn = http.client.HTTPSConnection(address, timeout=30, context=tls)
    else:
        conn = http.client.HTTPConnection(address, timeout=30)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def make_self_signed_cert(directory: Path) -> tuple[str, str]:
    """A throwaway localhost certificate made with openssl, for the TLS tests."""
    cert = directory / "cert.pem"
    key = directory / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)

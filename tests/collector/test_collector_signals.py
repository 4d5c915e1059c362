"""OTLP logs and metrics on the trace receivers' ports (SPEC "Other OTLP signals"):
logs stored losslessly through OTLP/HTTP (protobuf, JSON, gzip) and OTLP/gRPC, metrics
answered with success and every data point rejected, and a table of bad input per signal
answered as traces' bad input is."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import grpc
import orjson
import pytest
from google.protobuf import json_format
from logs_support import LOGS_METHOD, METRICS_METHOD, SPAN, TRACE, make_logs, make_metrics
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from test_collector_support import http_call, open_store, running_collector

from collector import Collector
from collector.ingest import METRICS_REFUSED
from spanstore.base import StoreUnavailable, WriteResult
from spanstore.duckdb_store import DuckDBStore

PB = {"Content-Type": "application/x-protobuf"}
JS = {"Content-Type": "application/json"}
LIMIT = 256 * 1024


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    with open_store(tmp_path) as s:
        yield s


@pytest.fixture
def collector(store: DuckDBStore) -> Iterator[Collector]:
    with running_collector(store, max_http_body_bytes=LIMIT) as c:
        yield c


def stored_request(store: DuckDBStore) -> ExportLogsServiceRequest:
    return store.logs_request(TRACE.hex())


# ------------------------------------------------------------------------------ logs


def test_protobuf_logs_are_stored_losslessly(collector: Collector, store: DuckDBStore) -> None:
    request = make_logs()
    status, headers, body = http_call(
        collector.addresses["otlp-http"], request.SerializeToString(), PB, path="/v1/logs"
    )
    assert status == 200
    assert headers["content-type"] == "application/x-protobuf"
    assert not ExportLogsServiceResponse.FromString(body).HasField("partial_success")
    assert stored_request(store) == request


def test_gzipped_json_logs_are_stored(collector: Collector, store: DuckDBStore) -> None:
    request = make_logs(records=2)
    doc = json_format.MessageToDict(request)
    for record in doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"]:
        record["traceId"] = TRACE.hex().upper()  # OTLP/JSON ids are hex, any case
        record["spanId"] = SPAN.hex()
    status, _, body = http_call(
        collector.addresses["otlp-http"],
        gzip.compress(orjson.dumps(doc)),
        {**JS, "Content-Encoding": "gzip"},
        path="/v1/logs",
    )
    assert status == 200, body
    assert orjson.loads(body) == {}
    assert stored_request(store) == request


def test_grpc_logs_are_stored(collector: Collector, store: DuckDBStore) -> None:
    request = make_logs(records=5)
    with grpc.insecure_channel(collector.addresses["otlp-grpc"]) as channel:
        answer = channel.unary_unary(LOGS_METHOD)(request.SerializeToString(), timeout=10)
    assert not ExportLogsServiceResponse.FromString(answer).HasField("partial_success")
    assert stored_request(store) == request
    counters = collector.counters()
    assert (counters.logs_accepted, counters.logs_rejected) == (5, 0)


def test_records_with_bad_ids_are_rejected_in_partial_success(
    collector: Collector, store: DuckDBStore
) -> None:
    request = make_logs(records=3)
    records = request.resource_logs[0].scope_logs[0].log_records
    records[1].trace_id = b"\x01\x02\x03"  # neither 16 bytes nor empty
    status, _, body = http_call(
        collector.addresses["otlp-http"], request.SerializeToString(), PB, path="/v1/logs"
    )
    assert status == 200
    partial = ExportLogsServiceResponse.FromString(body).partial_success
    assert partial.rejected_log_records == 1
    assert "3-byte trace id" in partial.error_message
    assert len(store.logs_of_traces([TRACE.hex()])) == 2


# ------------------------------------------------------------------------------ metrics


def test_http_metrics_are_answered_with_every_point_rejected(
    collector: Collector, store: DuckDBStore
) -> None:
    status, _, body = http_call(
        collector.addresses["otlp-http"],
        make_metrics(4).SerializeToString(),
        PB,
        "POST",
        "/v1/metrics",
    )
    assert status == 200
    partial = ExportMetricsServiceResponse.FromString(body).partial_success
    assert partial.rejected_data_points == 4
    assert partial.error_message == METRICS_REFUSED
    assert "traces and logs" in partial.error_message
    doc = json_format.MessageToDict(make_metrics(2))
    status, _, body = http_call(
        collector.addresses["otlp-http"], orjson.dumps(doc), JS, path="/v1/metrics"
    )
    assert status == 200
    assert orjson.loads(body)["partialSuccess"]["rejectedDataPoints"] == "2"
    assert collector.counters().metric_points_refused == 6
    assert store.stats().spans == 0 and store.log_counts() == (0, 0)


def test_grpc_metrics_are_answered_ok_with_every_point_rejected(collector: Collector) -> None:
    with grpc.insecure_channel(collector.addresses["otlp-grpc"]) as channel:
        answer = channel.unary_unary(METRICS_METHOD)(make_metrics(7).SerializeToString())
    partial = ExportMetricsServiceResponse.FromString(answer).partial_success
    assert partial.rejected_data_points == 7
    assert collector.counters().metric_points_refused == 7


# ------------------------------------------------------------------------------ bad input


BAD_INPUT = [
    # (name, method, headers, body, expected status)
    ("GET", "GET", PB, b"", 405),
    ("unknown content type", "POST", {"Content-Type": "text/plain"}, b"x", 415),
    ("unknown encoding", "POST", {**PB, "Content-Encoding": "br"}, b"x", 415),
    ("malformed protobuf", "POST", PB, b"\xff\xff\xff\xff", 400),
    ("malformed JSON", "POST", JS, b"{not json", 400),
    ("JSON of the wrong shape", "POST", JS, b'{"resourceLogs": 3, "resourceMetrics": 3}', 400),
    (
        "bad hex id",
        "POST",
        JS,
        b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"zz"}]}]}]}',
        400,
    ),
    ("corrupt gzip", "POST", {**PB, "Content-Encoding": "gzip"}, b"\x1f\x8b garbage", 400),
    ("too large", "POST", PB, b"\x0a" * (LIMIT + 1), 413),
    ("gzip bomb", "POST", {**PB, "Content-Encoding": "gzip"}, gzip.compress(bytes(LIMIT * 4)), 413),
]


@pytest.mark.parametrize("path", ["/v1/logs", "/v1/metrics"])
@pytest.mark.parametrize(
    ("method", "headers", "body", "expected"),
    [case[1:] for case in BAD_INPUT],
    ids=[case[0] for case in BAD_INPUT],
)
def test_bad_input_gets_the_traces_answers(
    collector: Collector,
    store: DuckDBStore,
    path: str,
    method: str,
    headers: dict[str, str],
    body: bytes,
    expected: int,
) -> None:
    status, answer_headers, _ = http_call(
        collector.addresses["otlp-http"], body, headers, method, path
    )
    assert status == expected
    if expected == 405:
        assert answer_headers["allow"].startswith("POST")
    assert store.log_counts() == (0, 0)


@pytest.mark.parametrize("path", ["/v1/logs", "/v1/metrics"])
def test_missing_token_is_401(store: DuckDBStore, path: str) -> None:
    body = (make_logs() if path == "/v1/logs" else make_metrics()).SerializeToString()
    with running_collector(store, ingest_token="s3cret") as collector:
        address = collector.addresses["otlp-http"]
        assert http_call(address, body, PB, path=path)[0] == 401
        wrong = {**PB, "Authorization": "Bearer nope"}
        assert http_call(address, body, wrong, path=path)[0] == 401
        right = {**PB, "Authorization": "Bearer s3cret"}
        assert http_call(address, body, right, path=path)[0] == 200
        method = LOGS_METHOD if path == "/v1/logs" else METRICS_METHOD
        with grpc.insecure_channel(collector.addresses["otlp-grpc"]) as channel:
            with pytest.raises(grpc.RpcError) as denied:
                channel.unary_unary(method)(body, timeout=10)
            assert denied.value.code() is grpc.StatusCode.UNAUTHENTICATED
            token = [("authorization", "Bearer s3cret")]
            channel.unary_unary(method)(body, timeout=10, metadata=token)
    # One export over HTTP and one over gRPC got in.
    assert store.log_counts()[0] == (6 if path == "/v1/logs" else 0)


@pytest.mark.parametrize("method", [LOGS_METHOD, METRICS_METHOD])
def test_grpc_malformed_request_is_invalid_argument(collector: Collector, method: str) -> None:
    with (
        grpc.insecure_channel(collector.addresses["otlp-grpc"]) as channel,
        pytest.raises(grpc.RpcError) as failed,
    ):
        channel.unary_unary(method)(b"\xff\xff\xff\xff", timeout=10)
    assert failed.value.code() is grpc.StatusCode.INVALID_ARGUMENT


class _BusyLogStore:
    """A store that is full: every write is refused as retryable."""

    def write(self, request: object, timeout: float | None = None) -> WriteResult:
        raise StoreUnavailable("the write queue is full; retry later")

    def write_logs(self, request: object, timeout: float | None = None) -> WriteResult:
        raise StoreUnavailable("the write queue is full; retry later")

    def close(self) -> None:
        pass


def test_a_full_store_answers_logs_retryably() -> None:
    body = make_logs().SerializeToString()
    with running_collector(_BusyLogStore(), retry_after_seconds=3) as collector:  # type: ignore[arg-type]
        status, headers, _ = http_call(collector.addresses["otlp-http"], body, PB, path="/v1/logs")
        assert status == 503
        assert headers["retry-after"] == "3"
        with (
            grpc.insecure_channel(collector.addresses["otlp-grpc"]) as channel,
            pytest.raises(grpc.RpcError) as refused,
        ):
            channel.unary_unary(LOGS_METHOD)(body, timeout=10)
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE


def test_a_full_receiver_refuses_metrics_retryably(store: DuckDBStore) -> None:
    body = make_metrics(3).SerializeToString()
    with running_collector(store, max_inflight_bytes=1024, admission_wait=0.0) as collector:
        assert collector.ingest.budget.try_charge(1024)  # other requests hold it all
        status, headers, _ = http_call(
            collector.addresses["otlp-http"], body, PB, path="/v1/metrics"
        )
    assert status == 503
    assert "retry-after" in headers

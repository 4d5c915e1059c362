"""The OpenTelemetry Python SDK's own OTLP log exporters (gRPC and HTTP/protobuf) send log
records written inside spans to a running collector with the real DuckDBStore: every
record is read back field by field and correlated with its span; the SDK's metric
exporters report success (every point is refused in partial_success, SPEC)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import (
    OTLPLogExporter as GrpcLogExporter,
)
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcMetricExporter,
)
from opentelemetry.exporter.otlp.proto.http._log_exporter import (
    OTLPLogExporter as HttpLogExporter,
)
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpMetricExporter,
)
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    InMemoryLogRecordExporter,
    LogRecordExporter,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from test_collector_support import open_store, running_collector

from collector import Collector
from spanstore.duckdb_store import DuckDBStore
from spanstore.logs import StoredLog

TOKEN = "sdk-log-token"
RECORDS_PER_SPAN = 40


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    with open_store(tmp_path) as s:
        yield s


@pytest.fixture
def collector(store: DuckDBStore) -> Iterator[Collector]:
    with running_collector(store, ingest_token=TOKEN) as c:
        yield c


def emit_logs(exporter: LogRecordExporter, service: str) -> tuple[list[Any], list[Any]]:
    """Log records written inside two spans (and one outside any); returns what the SDK
    recorded of records and spans."""
    resource = Resource.create({"service.name": service, "deployment.environment": "test"})
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    tracer = tracer_provider.get_tracer("shop.payments")
    recorded = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(exporter, max_queue_size=10_000, max_export_batch_size=64)
    )
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(recorded))
    logger = logger_provider.get_logger("payments.charge", "3.2.1")
    with tracer.start_as_current_span("POST /charge"):
        for n in range(RECORDS_PER_SPAN):
            logger.emit(
                LogRecord(
                    timestamp=time.time_ns(),  # the error record below leaves it unset
                    severity_text="INFO",
                    severity_number=SeverityNumber.INFO,
                    body=f"attempt {n} for <card> ending 4242 ✓",
                    attributes={"attempt": n, "gateway": "stripe", "amount": 12.5},
                )
            )
        with tracer.start_as_current_span("gateway call"):
            logger.emit(
                LogRecord(
                    severity_text="ERROR",
                    severity_number=SeverityNumber.ERROR,
                    body={"reason": "card_declined", "codes": [51, 5], "retry": False},
                    attributes={"error.type": "CardDeclined", "tags": ["a", "b"]},
                    event_name="payment.declined",
                )
            )
    logger.emit(LogRecord(severity_text="WARN", severity_number=SeverityNumber.WARN, body="idle"))
    assert logger_provider.force_flush(30_000)
    logger_provider.shutdown()
    tracer_provider.shutdown()
    return [r.log_record for r in recorded.get_finished_logs()], list(spans.get_finished_spans())


def check_stored(store: DuckDBStore, sent: list[Any], spans: list[Any], service: str) -> None:
    trace_id = f"{spans[0].context.trace_id:032x}"
    stored = store.logs_of_traces([trace_id])
    assert len(stored) == RECORDS_PER_SPAN + 1
    by_observed: dict[int, StoredLog] = {log.observed_unix_nano: log for log in stored}
    span_of = {s.name: f"{s.context.span_id:016x}" for s in spans}
    for record in sent:
        if record.trace_id == 0:  # the record outside any span
            continue
        got = by_observed[record.observed_timestamp]
        if record.timestamp is None:  # OTLP time 0: drawn at its observed time
            assert got.time_unset and got.time_unix_nano == record.observed_timestamp
        else:
            assert not got.time_unset and got.time_unix_nano == record.timestamp
        assert got.trace_id == trace_id
        assert got.span_id == f"{record.span_id:016x}"
        assert got.severity_text == record.severity_text
        assert got.severity_number == record.severity_number.value
        assert got.body == (record.body if not isinstance(record.body, dict) else dict(record.body))
        assert got.attributes == {
            k: list(v) if isinstance(v, tuple) else v for k, v in record.attributes.items()
        }
        assert got.flags == int(record.trace_flags)
        assert got.event_name == (record.event_name or "")
        assert got.service == service
        assert got.scope_name == "payments.charge" and got.scope_version == "3.2.1"
        assert got.resource_attributes["deployment.environment"] == "test"
    errors = [log for log in stored if log.severity_number == SeverityNumber.ERROR.value]
    assert [log.span_id for log in errors] == [span_of["gateway call"]]
    untraced = store.logs_in_range(0, 1 << 62, service=service, without_trace=True)
    assert [log.body for log in untraced] == ["idle"]


def test_grpc_log_exporter(collector: Collector, store: DuckDBStore) -> None:
    exporter = GrpcLogExporter(
        endpoint=collector.addresses["otlp-grpc"],
        insecure=True,
        headers={"authorization": f"Bearer {TOKEN}"},
    )
    sent, spans = emit_logs(exporter, "payment-grpc")
    check_stored(store, sent, spans, "payment-grpc")
    assert collector.counters().logs_accepted == RECORDS_PER_SPAN + 2


def test_http_log_exporter(collector: Collector, store: DuckDBStore) -> None:
    exporter = HttpLogExporter(
        endpoint=f"http://{collector.addresses['otlp-http']}/v1/logs",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    sent, spans = emit_logs(exporter, "payment-http")
    check_stored(store, sent, spans, "payment-http")


def _metrics() -> Any:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    meter = provider.get_meter("shop")
    meter.create_counter("orders").add(3, {"region": "eu"})
    meter.create_histogram("latency").record(12.5)
    data = reader.get_metrics_data()
    provider.shutdown()
    return data


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_metric_exporters_report_success(collector: Collector, protocol: str) -> None:
    exporter: Any
    if protocol == "grpc":
        exporter = GrpcMetricExporter(
            endpoint=collector.addresses["otlp-grpc"],
            insecure=True,
            headers={"authorization": f"Bearer {TOKEN}"},
        )
    else:
        exporter = HttpMetricExporter(
            endpoint=f"http://{collector.addresses['otlp-http']}/v1/metrics",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
    assert exporter.export(_metrics()) is MetricExportResult.SUCCESS
    exporter.shutdown()
    assert collector.counters().metric_points_refused == 2

"""Log and metric requests shared by the tests of OTLP logs and metrics."""

from __future__ import annotations

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN = bytes.fromhex("eee19b7ec3c1b174")
LOGS_METHOD = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
METRICS_METHOD = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"


def make_logs(records: int = 3, service: str = "payment") -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.add(key="service.name").value.string_value = service
    resource_logs.schema_url = "https://opentelemetry.io/schemas/1.24.0"
    scope_logs = resource_logs.scope_logs.add()
    scope_logs.scope.name = "payments.charge"
    scope_logs.scope.version = "2.1"
    for n in range(records):
        record = scope_logs.log_records.add()
        record.time_unix_nano = 1_700_000_000_000_000_000 + n
        record.observed_time_unix_nano = 1_700_000_000_000_000_500 + n
        record.severity_number = 17 if n == 0 else 9
        record.severity_text = "ERROR" if n == 0 else "INFO"
        record.body.string_value = f"charge {n} declined <script>"
        record.attributes.add(key="card.brand").value.string_value = "visa"
        record.attributes.add(key="attempt").value.int_value = n
        record.trace_id = TRACE
        record.span_id = SPAN
        record.flags = 1
        record.event_name = "payment.declined"
        record.dropped_attributes_count = n
    return request


def make_metrics(points: int = 4) -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    scope = request.resource_metrics.add().scope_metrics.add()
    gauge = scope.metrics.add(name="queue.depth").gauge
    for n in range(points - 1):
        gauge.data_points.add(as_int=n, time_unix_nano=1)
    scope.metrics.add(name="requests").sum.data_points.add(as_double=1.5)
    return request

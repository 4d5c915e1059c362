"""The three OTLP signals on one set of receivers: which path and gRPC method is which,
how each body is decoded, and what the ingest does with it.

Traces and logs are stored; metrics are answered with success and every data point
rejected in ``partial_success`` (SPEC, "Other OTLP signals"), so that an SDK pointed at
seqtrace with ``OTEL_EXPORTER_OTLP_ENDPOINT`` reports no errors. Protobuf bodies of
traces and logs go to the store as bytes (it parses them off the receiver's thread or
decodes only the few typed columns); OTLP/JSON is parsed here.
"""

from __future__ import annotations

import enum
from typing import Any, Final

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collector.errors import PROTOBUF, ErrorKind, IngestError
from collector.ingest import Ingest
from spanstore.otlp import OtlpJsonError, request_from_json, rewrite_hex_ids

__all__ = [
    "GRPC_METHODS",
    "LOGS_PATH",
    "METRICS_PATH",
    "SIGNAL_PATHS",
    "TRACES_PATH",
    "Signal",
    "decode_signal",
    "export_signal",
]


class Signal(enum.Enum):
    TRACES = "traces"
    LOGS = "logs"
    METRICS = "metrics"


TRACES_PATH: Final = "/v1/traces"
LOGS_PATH: Final = "/v1/logs"
METRICS_PATH: Final = "/v1/metrics"
SIGNAL_PATHS: Final = {
    TRACES_PATH: Signal.TRACES,
    LOGS_PATH: Signal.LOGS,
    METRICS_PATH: Signal.METRICS,
}
GRPC_METHODS: Final = {
    "/opentelemetry.proto.collector.trace.v1.TraceService/Export": Signal.TRACES,
    "/opentelemetry.proto.collector.logs.v1.LogsService/Export": Signal.LOGS,
    "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export": Signal.METRICS,
}
_REQUEST_TYPES: Final[dict[Signal, type[Message]]] = {
    Signal.TRACES: ExportTraceServiceRequest,
    Signal.LOGS: ExportLogsServiceRequest,
    Signal.METRICS: ExportMetricsServiceRequest,
}
_ROOT_ARRAYS: Final = {
    Signal.TRACES: "resourceSpans",
    Signal.LOGS: "resourceLogs",
    Signal.METRICS: "resourceMetrics",
}


def _from_json(doc: Any, signal: Signal) -> Message:
    if signal is Signal.TRACES:
        return request_from_json(doc)
    if not isinstance(doc, dict):
        raise OtlpJsonError(f"expected a JSON object with a {_ROOT_ARRAYS[signal]} array")
    request = _REQUEST_TYPES[signal]()
    try:
        json_format.ParseDict(rewrite_hex_ids(doc), request, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise OtlpJsonError(str(exc).splitlines()[0]) from None
    return request


def decode_signal(data: bytes, media: str, signal: Signal) -> Message | bytes:
    """A request body (already inflated) as what ``export_signal`` takes: protobuf stays
    bytes, JSON becomes the request message. Raises a 400 :class:`IngestError`."""
    name = _REQUEST_TYPES[signal].__name__
    try:
        if media == PROTOBUF:
            return data
        if not data.strip():
            return _REQUEST_TYPES[signal]()
        return _from_json(orjson.loads(data), signal)
    except DecodeError as exc:
        raise IngestError(ErrorKind.BAD_REQUEST, f"malformed protobuf {name}: {exc}") from None
    except orjson.JSONDecodeError as exc:
        raise IngestError(ErrorKind.BAD_REQUEST, f"malformed JSON: {exc}") from None
    except OtlpJsonError as exc:
        raise IngestError(ErrorKind.BAD_REQUEST, f"invalid OTLP/JSON: {exc}") from None
    except RecursionError:
        raise IngestError(ErrorKind.BAD_REQUEST, "JSON nested too deeply") from None


def export_signal(
    ingest: Ingest, signal: Signal, request: Message | bytes, time_left: float | None = None
) -> Message:
    """Hand a decoded request to the ingest; returns the OTLP response message."""
    if signal is Signal.TRACES:
        assert isinstance(request, ExportTraceServiceRequest | bytes)
        return ingest.export(request, time_left)
    if signal is Signal.LOGS:
        assert isinstance(request, ExportLogsServiceRequest | bytes)
        return ingest.export_logs(request, time_left)
    assert isinstance(request, ExportMetricsServiceRequest | bytes)
    return ingest.export_metrics(request)

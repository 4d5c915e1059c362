"""OTLP log records: decoded for storage, encoded for the journal, read back losslessly.

Why this shape: per-attribute Python work is what limits ingest (NOTES.md), so a record
is stored as the typed columns that queries need (ids, times, severity, service) plus
``raw``: the record's own protobuf with its four incompressible fields (the two times and
the two ids, which have columns) cleared. Body and attributes are never touched on the
way in; they are decoded from ``raw`` only when a record is read. Resources and scopes go
to the same ``resources`` / ``scopes`` tables the spans use, once per distinct value.

A journal record of logs starts with :data:`LOG_RECORD_MAGIC`; a span batch's record
starts with the length of its first Arrow stream (``spanstore.wire``), which is never that
large, so the journal's replay tells the two apart by the first eight bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

import pyarrow as pa
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ScopeLogs

from spanstore.base import InvalidRequest, WriteResult
from spanstore.decode.prepare import add_resource, add_scope
from spanstore.model import AttrValue
from spanstore.otlp import anyvalue_to_python, attributes_to_dict
from spanstore.wire import decode_tables, encode_tables, reference_maps, reference_tables

if TYPE_CHECKING:
    from spanstore.log_reader import LogQueries as LogReader
    from spanstore.policy import PolicyEngine

__all__ = [
    "LOG_COLUMNS",
    "LOG_RECORD_MAGIC",
    "LogBatch",
    "LogReader",
    "LogWriter",
    "StoredLog",
    "body_text",
    "decode_log_batch",
    "encode_log_batch",
    "is_log_record",
    "log_dicts",
    "log_to_dict",
    "prepare_logs",
    "severity_name",
    "stored_log",
    "stored_logs",
]

LOG_RECORD_MAGIC: Final = b"SQLOGS01"
_MAX_INT64: Final = (1 << 63) - 1
_MAX_REJECT_MESSAGES: Final = 5

LOG_COLUMNS: Final = pa.schema(
    [
        ("trace_id", pa.binary()),  # null: the record belongs to no trace
        ("span_id", pa.binary()),
        # When it happened: the record's time, or its observed time when it has none
        # (OTLP allows either to be 0); ``time_unset`` keeps which, so nothing is lost.
        ("time_unix_nano", pa.int64()),
        ("observed_unix_nano", pa.int64()),
        ("time_unset", pa.bool_()),
        ("severity_number", pa.uint8()),
        ("severity_text", pa.string()),
        ("service_name", pa.string()),
        ("resource_id", pa.uint64()),
        ("scope_id", pa.uint64()),
        ("flags", pa.uint32()),
        ("event_name", pa.string()),
        ("raw", pa.binary()),  # LogRecord without times and ids
    ]
)

#: Severity number ranges (OTLP logs data model) -> the short name shown for each.
_SEVERITY_RANGES: Final = (
    (1, "TRACE"),
    (5, "DEBUG"),
    (9, "INFO"),
    (13, "WARN"),
    (17, "ERROR"),
    (21, "FATAL"),
)
WARN_SEVERITY: Final = 13
ERROR_SEVERITY: Final = 17


def severity_name(number: int, text: str = "") -> str:
    """The record's severity as sent (its text), else the name of its number's range."""
    if text:
        return text
    name = "UNSPECIFIED"
    for low, label in _SEVERITY_RANGES:
        if number >= low:
            name = label
    return name


@dataclass(slots=True)
class LogBatch:
    """One request's log records as an Arrow table, plus their resources and scopes."""

    logs: pa.Table
    resources: dict[int, tuple[str, str, bytes]]
    scopes: dict[int, tuple[str, str, str, bytes]]
    rejected: int = 0
    messages: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    #: This batch's journal record, when a decoder process made it (sent as these bytes).
    wire: bytes | None = None

    @property
    def size(self) -> int:
        return int(self.logs.num_rows)

    @property
    def nbytes(self) -> int:
        return int(self.logs.nbytes)


def _parse(request: ExportLogsServiceRequest | bytes) -> ExportLogsServiceRequest:
    if not isinstance(request, bytes):
        return request
    try:
        parsed: ExportLogsServiceRequest = ExportLogsServiceRequest.FromString(request)
        return parsed
    except Exception as exc:  # upb raises DecodeError
        raise InvalidRequest(f"malformed protobuf ExportLogsServiceRequest: {exc}") from None


def _no_entity(_key: str) -> tuple[str, int] | None:
    return None


def prepare_logs(
    request: ExportLogsServiceRequest | bytes, policy: PolicyEngine | None = None
) -> LogBatch:
    """The request's valid records as a :class:`LogBatch`, after ``policy``.

    A record is invalid only when an id has the wrong length (OTLP: trace id 16 bytes,
    span id 8, or empty); it is rejected and counted, the rest are kept.
    """
    parsed = _parse(request)
    trace_ids: list[bytes | None] = []
    span_ids: list[bytes | None] = []
    times: list[int] = []
    observed: list[int] = []
    unset: list[bool] = []
    severities: list[int] = []
    severity_texts: list[str] = []
    services: list[str] = []
    resource_ids: list[int] = []
    scope_ids: list[int] = []
    flags: list[int] = []
    events: list[str] = []
    raws: list[bytes] = []
    resources: dict[int, tuple[str, str, bytes]] = {}
    scopes: dict[int, tuple[str, str, str, bytes]] = {}
    counts: dict[str, int] = {}
    rejected = 0
    messages: list[str] = []
    needs_look = policy.log_needs_look if policy is not None else None
    for resource_logs in parsed.resource_logs:
        resource_id, service, _, _ = add_resource(
            resource_logs,  # ResourceLogs has the fields add_resource reads
            _no_entity,
            policy,
            counts,
            resources,
        )
        for scope_logs in resource_logs.scope_logs:
            scope_id, _ = add_scope(scope_logs, policy, counts, scopes)
            for record in scope_logs.log_records:
                trace_id = record.trace_id
                span_id = record.span_id
                if len(trace_id) not in (0, 16) or len(span_id) not in (0, 8):
                    rejected += 1
                    if len(messages) < _MAX_REJECT_MESSAGES:
                        messages.append(
                            f"log record with a {len(trace_id)}-byte trace id and a "
                            f"{len(span_id)}-byte span id (want 16 and 8, or none)"
                        )
                    continue
                stamp = min(record.time_unix_nano, _MAX_INT64)
                seen = min(record.observed_time_unix_nano, _MAX_INT64)
                trace_ids.append(trace_id if trace_id and any(trace_id) else None)
                span_ids.append(span_id if span_id and any(span_id) else None)
                times.append(stamp or seen)
                observed.append(seen)
                unset.append(stamp == 0)
                number = record.severity_number
                severities.append(number if 0 <= number <= 255 else 0)
                severity_texts.append(record.severity_text)
                services.append(service)
                resource_ids.append(resource_id)
                scope_ids.append(scope_id)
                flags.append(record.flags)
                events.append(record.event_name)
                record.ClearField("time_unix_nano")
                record.ClearField("observed_time_unix_nano")
                record.ClearField("trace_id")
                record.ClearField("span_id")
                raw = record.SerializeToString()
                if (
                    needs_look is not None
                    and needs_look(record, raw)
                    and policy is not None
                    and policy.apply_attributes(record, counts)
                ):
                    raw = record.SerializeToString()
                raws.append(raw)
    table = pa.Table.from_arrays(
        [
            pa.array(trace_ids, pa.binary()),
            pa.array(span_ids, pa.binary()),
            pa.array(times, pa.int64()),
            pa.array(observed, pa.int64()),
            pa.array(unset, pa.bool_()),
            pa.array(severities, pa.uint8()),
            pa.array(severity_texts, pa.string()),
            pa.array(services, pa.string()),
            pa.array(resource_ids, pa.uint64()),
            pa.array(scope_ids, pa.uint64()),
            pa.array(flags, pa.uint32()),
            pa.array(events, pa.string()),
            pa.array(raws, pa.binary()),
        ],
        schema=LOG_COLUMNS,
    )
    return LogBatch(table, resources, scopes, rejected, messages, counts)


# ---------------------------------------------------------------------------- journal


def encode_log_batch(batch: LogBatch) -> bytes:
    """The journal record of a batch: the magic, then logs, resources and scopes as Arrow
    IPC streams, each behind its length (8 bytes, little-endian; ``spanstore.wire``)."""
    return encode_tables(
        [batch.logs, *reference_tables(batch.resources, batch.scopes)], LOG_RECORD_MAGIC
    )


def is_log_record(payload: bytes) -> bool:
    return payload[:8] == LOG_RECORD_MAGIC


def decode_log_batch(payload: bytes) -> LogBatch:
    logs, resources, scopes = decode_tables(payload, 3, LOG_RECORD_MAGIC)
    resource_map, scope_map = reference_maps(resources, scopes)
    return LogBatch(logs=logs, resources=resource_map, scopes=scope_map)


# ---------------------------------------------------------------------------- reading


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ is 3x slower
class StoredLog:
    """One record as read back (every field the exporter sent)."""

    time_unix_nano: int
    observed_unix_nano: int
    severity_number: int
    severity_text: str
    service: str
    trace_id: str | None
    span_id: str | None
    flags: int
    event_name: str
    body: AttrValue
    attributes: dict[str, AttrValue]
    dropped_attributes_count: int
    resource_attributes: dict[str, AttrValue]
    scope_name: str
    scope_version: str
    #: The record's time was not set (``time_unix_nano`` is its observed time).
    time_unset: bool = False

    @property
    def severity(self) -> str:
        return severity_name(self.severity_number, self.severity_text)

    @property
    def is_error(self) -> bool:
        return self.severity_number >= ERROR_SEVERITY or self.severity.upper().startswith(
            ("ERROR", "FATAL", "CRITICAL")
        )

    @property
    def is_warning(self) -> bool:
        return not self.is_error and (
            self.severity_number >= WARN_SEVERITY or self.severity.upper().startswith("WARN")
        )


def body_text(body: AttrValue) -> str:
    """A body as one line of text: strings as they are, anything else as JSON."""
    if body is None:
        return ""
    if isinstance(body, str):
        return body
    if isinstance(body, bytes):
        return body.hex()
    return json.dumps(body, ensure_ascii=False, sort_keys=True, default=_json_default)


def _json_default(value: object) -> object:
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def stored_logs(
    rows: Sequence[Sequence[Any]],
    resource_attributes: Mapping[int, dict[str, AttrValue]],
    scopes: Mapping[int, tuple[str, str]],
) -> list[StoredLog]:
    """Rows of ``logs_of_traces.sql`` / ``logs_in_range.sql`` as :class:`StoredLog`.

    The records' bytes are parsed in one protobuf call (as the ``log_records`` of one
    ScopeLogs): 10k records cost one C parse instead of 10k Python-level ones."""
    container = ScopeLogs.FromString(b"".join(_framed(row[12]) for row in rows))
    return [
        stored_log(row, resource_attributes.get(row[8], {}), scopes.get(row[9], ("", "")), record)
        for row, record in zip(rows, container.log_records, strict=True)
    ]


def _framed(raw: bytes) -> bytes:
    """``raw`` as field 2 (``log_records``) of a ScopeLogs message."""
    size = len(raw)
    prefix = bytearray(b"\x12")
    while size >= 0x80:
        prefix.append((size & 0x7F) | 0x80)
        size >>= 7
    prefix.append(size)
    return bytes(prefix) + raw


def stored_log(
    row: Sequence[Any],
    resource_attributes: dict[str, AttrValue],
    scope: tuple[str, str],
    record: LogRecord | None = None,
) -> StoredLog:
    """A row of ``logs_of_traces.sql`` / ``logs_in_range.sql`` as a :class:`StoredLog`."""
    (trace_id, span_id, time_ns, observed_ns, unset, number, text, service, _rid, _sid) = row[:10]
    flags, event_name, raw = row[10:13]
    if record is None:
        record = LogRecord.FromString(raw)
    body: AttrValue = anyvalue_to_python(record.body) if record.HasField("body") else None
    return StoredLog(
        time_unix_nano=time_ns,
        observed_unix_nano=observed_ns,
        severity_number=number,
        severity_text=text,
        service=service,
        trace_id=trace_id.hex() if trace_id else None,
        span_id=span_id.hex() if span_id else None,
        flags=flags,
        event_name=event_name,
        body=body,
        attributes=attributes_to_dict(record.attributes),
        dropped_attributes_count=record.dropped_attributes_count,
        resource_attributes=resource_attributes,
        scope_name=scope[0],
        scope_version=scope[1],
        time_unset=bool(unset),
    )


def stored_log_proto(row: Sequence[Any]) -> LogRecord:
    """The record of a row exactly as it was sent (times and ids put back)."""
    trace_id, span_id, time_ns, observed_ns, unset = row[:5]
    record: LogRecord = LogRecord.FromString(row[12])
    if not unset:
        record.time_unix_nano = time_ns
    record.observed_time_unix_nano = observed_ns
    if trace_id:
        record.trace_id = trace_id
    if span_id:
        record.span_id = span_id
    return record


_SCALARS: Final = (str, int, float, bool)


def _plain(value: AttrValue) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def log_to_dict(log: StoredLog) -> dict[str, Any]:
    """SPEC's ``logs --json`` record, plus fields SPEC allows adding."""
    return {
        "time_unix_nano": log.time_unix_nano,
        "severity": log.severity,
        "severity_number": log.severity_number,
        "body": body_text(log.body),
        "service": log.service,
        "trace_id": log.trace_id,
        "span_id": log.span_id,
        "attributes": {
            k: v if type(v) in _SCALARS else _plain(v) for k, v in log.attributes.items()
        },
        "observed_unix_nano": log.observed_unix_nano,
        "flags": log.flags,
        "event_name": log.event_name or None,
        # The body as sent when it is not a string (a map, a list, bytes, a number).
        "body_value": None if isinstance(log.body, str) else _plain(log.body),
        "dropped_attributes_count": log.dropped_attributes_count,
        "scope": {"name": log.scope_name, "version": log.scope_version},
    }


# ---------------------------------------------------------------------------- protocols


@runtime_checkable
class LogWriter(Protocol):
    def write_logs(
        self, request: ExportLogsServiceRequest | bytes, timeout: float | None = None
    ) -> WriteResult:
        """Store a request's valid log records; returns once they are durable."""
        ...


def anyvalue_text(value: AnyValue) -> str:
    return body_text(anyvalue_to_python(value))


def log_dicts(request: ExportLogsServiceRequest) -> list[dict[str, Any]]:
    """A request's records as ``logs --json`` dicts, without a store (files, tests)."""
    out: list[dict[str, Any]] = []
    for resource_logs in request.resource_logs:
        resource = attributes_to_dict(resource_logs.resource.attributes)
        service = resource.get("service.name")
        for scope_logs in resource_logs.scope_logs:
            scope = (scope_logs.scope.name, scope_logs.scope.version)
            for record in scope_logs.log_records:
                row = (
                    record.trace_id or None,
                    record.span_id or None,
                    record.time_unix_nano or record.observed_time_unix_nano,
                    record.observed_time_unix_nano,
                    record.time_unix_nano == 0,
                    record.severity_number,
                    record.severity_text,
                    service if isinstance(service, str) and service else "unknown_service",
                    0,
                    0,
                    record.flags,
                    record.event_name,
                    record.SerializeToString(),
                )
                out.append(log_to_dict(stored_log(row, resource, scope)))
    return out


def __getattr__(name: str) -> object:
    # ``LogReader`` is the one log reader every store has (spanstore.log_reader), imported
    # when first asked for: decoder processes import this module and never read.
    if name == "LogReader":
        from spanstore.log_reader import LogQueries

        return LogQueries
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Log record reads over any dialect (``spanstore.dialect``), beside ``StoreReader``.

Each method runs one named query (``spanstore/sql/<dialect>/NAME.sql``) and maps its rows
(``spanstore.logs``). A store without a log table (a DuckDB file of schema version 2
opened read-only, an OpenTelemetry exporter database without ``otel_logs``) reads no
records. The exporter's ``otel_logs`` rows are columns, not protobuf (the dialect's
``span_layout`` is "columns"): they map through :func:`otel_stored_logs`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.logs.v1.logs_pb2 import ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from spanstore.logs import StoredLog, stored_log_proto, stored_logs
from spanstore.model import AttrValue
from spanstore.otlp import attributes_to_dict
from spanstore.rows import references

if TYPE_CHECKING:
    from spanstore.dialect import Dialect

__all__ = ["LogQueries", "otel_logs_request", "otel_stored_logs"]

#: The columns every log query returns, in the order ``spanstore.logs`` reads them.
LOG_ROW_COLUMNS = (
    "trace_id", "span_id", "time_unix_nano", "observed_unix_nano", "time_unset",
    "severity_number", "severity_text", "service_name", "resource_id", "scope_id",
    "flags", "event_name", "raw",
)  # fmt: skip


class LogQueries:
    """LogReader (``spanstore.logs``) for a store with a dialect."""

    if TYPE_CHECKING:
        _dialect: Dialect

        def _table(self, name: str, params: Mapping[str, object] | None = None) -> pa.Table: ...
        def _since(self, unix_nano: int | None) -> int: ...
        def _until(self, unix_nano: int | None) -> int: ...
        def _id_tables(self, name: str, ids: Sequence[Any], **params: object) -> list[pa.Table]: ...

    #: False for a store without a log table (a DuckDB file of schema version 2).
    _has_logs: bool = True

    def _answers(self, name: str) -> bool:
        # No waiting for a writer: DuckDB shows acknowledged, uncommitted log batches
        # beside the table (spanstore/unseen.py); ClickHouse acknowledges after INSERT.
        return self._has_logs and self._dialect.has_query(name)

    def _log_rows(self, tables: list[pa.Table]) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        for table in tables:
            rows.extend(zip(*(table.column(c).to_pylist() for c in LOG_ROW_COLUMNS), strict=True))
        if len(tables) > 1:
            rows.sort(key=lambda r: (r[2], r[3]))
        return rows

    def _columns(self) -> bool:
        return self._dialect.span_layout == "columns"

    def _stored(self, rows: list[tuple[Any, ...]]) -> list[StoredLog]:
        if not rows:
            return []
        refs = self._table(
            "refs_by_id",
            {
                "resource_ids": sorted({r[8] for r in rows}),
                "scope_ids": sorted({r[9] for r in rows}),
            },
        )
        resources, scopes = references(refs)
        resource_attrs: dict[int, dict[str, AttrValue]] = {
            rid: attributes_to_dict(Resource.FromString(raw).attributes)
            for rid, (raw, _) in resources.items()
        }
        names = {sid: (name, version) for sid, (name, version, _, _) in scopes.items()}
        return stored_logs(rows, resource_attrs, names)

    def logs_of_traces(
        self,
        trace_ids: Sequence[str],
        start_unix_nano: int | None = None,
        end_unix_nano: int | None = None,
    ) -> list[StoredLog]:
        ids = sorted(set(self._dialect.trace_ids(trace_ids)))  # type: ignore[type-var]
        if not ids or not self._answers("logs_of_traces"):
            return []
        bounds = {"lo": self._since(start_unix_nano), "hi": self._until(end_unix_nano)}
        tables = self._id_tables("logs_of_traces", ids, **bounds)
        if self._columns():
            return otel_stored_logs(tables)
        return self._stored(self._log_rows(tables))

    def logs_in_range(
        self,
        start_unix_nano: int,
        end_unix_nano: int,
        service: str | None = None,
        min_severity: int = 0,
        without_trace: bool = False,
        limit: int = 1000,
    ) -> list[StoredLog]:
        if not self._answers("logs_in_range"):
            return []
        params = {
            "lo": self._since(start_unix_nano),
            "hi": self._until(end_unix_nano),
            "service": service,
            "min_severity": min_severity,
            "without_trace": without_trace,
            "limit": limit,
        }
        table = self._table("logs_in_range", params)
        if self._columns():
            return otel_stored_logs([table])
        return self._stored(self._log_rows([table]))

    def log_counts(self) -> tuple[int, int]:
        """(records stored, records outside any trace)."""
        if not self._answers("log_stats"):
            return 0, 0
        row = self._table("log_stats").to_pylist()[0]
        return int(row["logs"] or 0), int(row["without_trace"] or 0)

    def logs_request(self, trace_id: str) -> ExportLogsServiceRequest:
        """A trace's log records as an OTLP request, exactly as stored (lossless)."""
        requests = self.logs_requests([trace_id], max_records=None)
        return requests[0] if requests else ExportLogsServiceRequest()

    def logs_requests(
        self, trace_ids: Sequence[str], max_records: int | None = 512
    ) -> list[ExportLogsServiceRequest]:
        """These traces' log records, exactly as stored (lossless), in time order as OTLP
        requests of at most ``max_records`` records each (None: one request); no request
        when they have no records. One query for all the traces (``logs_of_traces``)."""
        ids = sorted(set(self._dialect.trace_ids(trace_ids)))  # type: ignore[type-var]
        if not ids or not self._answers("logs_of_traces"):
            return []
        if self._columns():  # the exporter's otel_logs: records rebuilt from its columns
            records = self.logs_of_traces(trace_ids)
            size = max_records or max(1, len(records))
            return [
                otel_logs_request(records[at : at + size]) for at in range(0, len(records), size)
            ]
        bounds = {"lo": self._dialect.far_past, "hi": self._dialect.far_future}
        rows = self._log_rows(self._id_tables("logs_of_traces", ids, **bounds))
        if not rows:
            return []
        resources, scopes = references(
            self._table(
                "refs_by_id",
                {
                    "resource_ids": sorted({r[8] for r in rows}),
                    "scope_ids": sorted({r[9] for r in rows}),
                },
            )
        )
        size = max_records if max_records is not None and max_records > 0 else len(rows)
        requests: list[ExportLogsServiceRequest] = []
        for begin in range(0, len(rows), size):
            request = ExportLogsServiceRequest()
            by_resource: dict[int, ResourceLogs] = {}
            groups: dict[tuple[int, int], ScopeLogs] = {}
            for row in rows[begin : begin + size]:
                rid, sid = row[8], row[9]
                if rid not in by_resource:
                    resource_logs = request.resource_logs.add()
                    raw, url = resources.get(rid, (b"", ""))
                    resource_logs.resource.CopyFrom(Resource.FromString(raw))
                    resource_logs.schema_url = url
                    by_resource[rid] = resource_logs
                if (rid, sid) not in groups:
                    scope_logs = by_resource[rid].scope_logs.add()
                    _, _, scope_raw, scope_url = scopes.get(sid, ("", "", b"", ""))
                    scope_logs.scope.CopyFrom(InstrumentationScope.FromString(scope_raw))
                    scope_logs.schema_url = scope_url
                    groups[(rid, sid)] = scope_logs
                groups[(rid, sid)].log_records.append(stored_log_proto(row))
            requests.append(request)
        return requests


def otel_stored_logs(tables: list[pa.Table]) -> list[StoredLog]:
    """Rows of ``otel_logs_*.sql`` (the exporter's columns) as :class:`StoredLog`: the
    body and attribute values are the text the exporter wrote; it keeps no observed time
    (the record's time stands for it) and no count of dropped attributes."""
    found: list[StoredLog] = []
    for table in tables:
        for row in table.to_pylist():
            found.append(
                StoredLog(
                    time_unix_nano=int(row["time_unix_nano"]),
                    observed_unix_nano=int(row["observed_unix_nano"]),
                    severity_number=int(row["severity_number"]),
                    severity_text=row["severity_text"] or "",
                    service=row["service_name"] or "",
                    trace_id=row["trace_id"] or None,
                    span_id=row["span_id"] or None,
                    flags=int(row["flags"]),
                    event_name=row["event_name"] or "",
                    body=row["body"],
                    attributes=dict(row["attributes"] or ()),
                    dropped_attributes_count=0,
                    resource_attributes=dict(row["resource_attributes"] or ()),
                    scope_name=row["scope_name"] or "",
                    scope_version=row["scope_version"] or "",
                )
            )
    if len(tables) > 1:
        found.sort(key=lambda r: (r.time_unix_nano, r.observed_unix_nano))
    return found


def otel_logs_request(records: Sequence[StoredLog]) -> ExportLogsServiceRequest:
    """Records read from ``otel_logs`` as an OTLP request: one ResourceLogs per resource
    (its attributes as text), one ScopeLogs per scope, values as the exporter wrote them."""
    request = ExportLogsServiceRequest()
    groups: dict[tuple[Any, ...], ScopeLogs] = {}
    resources: dict[tuple[tuple[str, Any], ...], ResourceLogs] = {}
    for record in records:
        resource_key = tuple(sorted(record.resource_attributes.items()))
        if resource_key not in resources:
            resource_logs = request.resource_logs.add()
            for key, value in record.resource_attributes.items():
                resource_logs.resource.attributes.add(key=key).value.string_value = str(value)
            resources[resource_key] = resource_logs
        group_key = (resource_key, record.scope_name, record.scope_version)
        if group_key not in groups:
            scope_logs = resources[resource_key].scope_logs.add()
            scope_logs.scope.name = record.scope_name
            scope_logs.scope.version = record.scope_version
            groups[group_key] = scope_logs
        out = groups[group_key].log_records.add()
        out.time_unix_nano = record.time_unix_nano
        out.observed_time_unix_nano = record.observed_unix_nano
        out.severity_number = record.severity_number
        out.severity_text = record.severity_text
        out.flags = record.flags
        out.event_name = record.event_name
        if record.trace_id:
            out.trace_id = bytes.fromhex(record.trace_id)
        if record.span_id:
            out.span_id = bytes.fromhex(record.span_id)
        if record.body is not None:
            out.body.string_value = str(record.body)
        for key, value in record.attributes.items():
            out.attributes.add(key=key).value.string_value = str(value)
    return request

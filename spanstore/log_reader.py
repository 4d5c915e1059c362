"""Log record reads over any dialect (``spanstore.dialect``), beside ``StoreReader``.

Each method runs one named query (``spanstore/sql/<dialect>/NAME.sql``) and maps its rows
(``spanstore.logs``). A dialect without the query (ClickHouse today: no log table yet, see
docs/logs.md) reads no records, as does a DuckDB file of schema version 2 opened read-only.
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

__all__ = ["LogQueries"]

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
        if not (self._has_logs and self._dialect.has_query(name)):
            return False
        self._settle_logs()
        return True

    def _settle_logs(self) -> None:
        """Before a log read: make every acknowledged log record readable. A store whose
        writer acknowledges before it commits (DuckDB) waits for it here: span reads see
        uncommitted batches through ``spanstore.unseen``'s views, log batches do not."""

    def _log_rows(self, tables: list[pa.Table]) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        for table in tables:
            rows.extend(zip(*(table.column(c).to_pylist() for c in LOG_ROW_COLUMNS), strict=True))
        if len(tables) > 1:
            rows.sort(key=lambda r: (r[2], r[3]))
        return rows

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
        return self._stored(self._log_rows(self._id_tables("logs_of_traces", ids, **bounds)))

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
        return self._stored(self._log_rows([self._table("logs_in_range", params)]))

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

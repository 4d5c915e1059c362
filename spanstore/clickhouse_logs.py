"""Log records in seqtrace's own ClickHouse tables: the write side of #18 there.

A mixin of :class:`spanstore.clickhouse_store.ClickHouseStore`, kept apart so that the
span store stays as it is. ``write_logs`` decodes a request (``spanstore.logs``), queues
the batch for the store's one writer thread beside span batches, and returns once it is
inserted, as ``write`` does for spans (the ClickHouse store has no journal: an insert is
its durability). The writer inserts a group's log batches in one insert into
``seqtrace_logs`` after their new resources and scopes, as it inserts spans
(``ClickHouseStore._write_group``). Log records have no ids of their
own: an export the client re-sends after a lost answer is stored twice (as in DuckDB).

Reads are :class:`spanstore.log_reader.LogQueries` over the dialect's named queries.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING

import pyarrow as pa
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from spanstore.base import StoreError, StoreUnavailable, WriteResult
from spanstore.logs import LogBatch
from spanstore.writer import Queued

if TYPE_CHECKING:
    from spanstore.admission import WaitingSpans
    from spanstore.decode.front import RequestDecoder
    from spanstore.decode.prepare import PreparedBatch
    from spanstore.writer import WriterThread

__all__ = ["LOGS_TABLE", "ClickHouseLogs"]

log = logging.getLogger(__name__)

LOGS_TABLE = "seqtrace_logs"


class ClickHouseLogs:
    """Log writes over the state of a ClickHouseStore (see the module docstring)."""

    if TYPE_CHECKING:
        layout: str
        description: str
        read_only: bool
        _closed: bool
        _writer: WriterThread | None
        _decode: RequestDecoder
        _waiting: WaitingSpans
        _known_resources: set[int]
        _known_scopes: set[int]

        def _insert_table(self, name: str, table: pa.Table) -> None: ...
        def _new_references(
            self, batches: Sequence[PreparedBatch | LogBatch]
        ) -> tuple[dict[int, tuple[str, str, bytes]], dict[int, tuple[str, str, str, bytes]]]: ...
        def _insert_references(
            self,
            resources: Mapping[int, tuple[str, str, bytes]],
            scopes: Mapping[int, tuple[str, str, str, bytes]],
        ) -> None: ...

    def write_logs(
        self, request: ExportLogsServiceRequest | bytes, timeout: float | None = None
    ) -> WriteResult:
        """Store the request's valid log records; returns once they are inserted."""
        if self.layout == "otel":
            raise StoreError(
                f"{self.description} is read through the OpenTelemetry exporter's "
                "tables, which seqtrace does not write; send logs to that collector, or "
                "give seqtrace a database of its own"
            )
        if self.read_only or self._writer is None:
            raise StoreError("this store was opened read-only")
        if self._closed:
            raise StoreUnavailable("the store is shutting down")
        batch = self._decode.prepare_logs(request, timeout)
        result = WriteResult(
            accepted=batch.size, rejected=batch.rejected, messages=tuple(batch.messages)
        )
        self._waiting.count(batch.counts)
        if not batch.size:
            return result
        # Log records count against the same queue bound as spans: they wait for the
        # same writer.
        self._waiting.admit(batch.size, unit="rows")
        done: Future[int] = Future()
        self._writer.put(Queued(batch, done=done))
        try:
            done.result(timeout=timeout)
        except FutureTimeout:
            # Still queued and inserted later; a retry would store the records twice.
            raise StoreUnavailable("the write did not commit in time; retry") from None
        return result

    def _insert_logs(self, batches: Sequence[LogBatch]) -> list[int]:
        """Insert a group of log batches (no duplicates: records have no ids)."""
        resources, scopes = self._new_references(batches)
        self._insert_references(resources, scopes)
        # Records last: a failure before them stores none, and the client's retry
        # writes them once (the extra reference rows are collapsed by their tables).
        self._insert_table(LOGS_TABLE, pa.concat_tables([b.logs for b in batches]))
        self._known_resources.update(resources)
        self._known_scopes.update(scopes)
        return [0] * len(batches)

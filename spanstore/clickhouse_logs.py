"""Log records in seqtrace's own ClickHouse tables: the write side of #18 there.

A mixin of :class:`spanstore.clickhouse_store.ClickHouseStore`, kept apart so that the
span store stays as it is. ``write_logs`` decodes a request (``spanstore.logs``), queues
the batch for the store's one writer thread beside span batches, and returns once it is
inserted, as ``write`` does for spans (the ClickHouse store has no journal: an insert is
its durability). The writer inserts a group's log batches in one insert into
``seqtrace_logs`` after their new resources and scopes. Log records have no ids of their
own: an export the client re-sends after a lost answer is stored twice (as in DuckDB).

Reads are :class:`spanstore.log_reader.LogQueries` over the dialect's named queries.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from spanstore.base import StoreError, StoreUnavailable, WriteResult
from spanstore.logs import LogBatch, prepare_logs

if TYPE_CHECKING:
    from spanstore.admission import WaitingSpans
    from spanstore.decode.front import RequestDecoder

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
        _writer: threading.Thread | None
        _decode: RequestDecoder
        _queue: queue.Queue[Any]
        _waiting: WaitingSpans
        _known_resources: set[int]
        _known_scopes: set[int]

        def _release(self, size: int) -> None: ...
        def _insert_table(self, name: str, table: pa.Table) -> None: ...

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
        batch = self._prepare_logs(request, timeout)
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
        self._queue.put((batch, done))
        try:
            done.result(timeout=timeout)
        except FutureTimeout:
            # Still queued and inserted later; a retry would store the records twice.
            raise StoreUnavailable("the write did not commit in time; retry") from None
        return result

    def _prepare_logs(
        self, request: ExportLogsServiceRequest | bytes, timeout: float | None
    ) -> LogBatch:
        pool = self._decode.pool
        if pool is None:
            return prepare_logs(request, self._decode.policy)
        data = request if isinstance(request, bytes) else request.SerializeToString()
        try:
            return pool.prepare_logs(data, timeout)
        except multiprocessing.TimeoutError:
            raise StoreUnavailable("decoding did not finish in time; retry") from None

    def _split_log_items(self, group: list[Any]) -> list[Any]:
        """Insert the group's log batches; returns its span items (the writer's step)."""
        logs = [item for item in group if isinstance(item[0], LogBatch)]
        if logs:
            self._commit_logs(logs)
        return [item for item in group if not isinstance(item[0], LogBatch)]

    def _commit_logs(self, items: list[tuple[LogBatch, Future[int]]]) -> None:
        try:
            self._insert_logs([batch for batch, _ in items])
        except Exception as exc:
            self._known_resources.clear()
            self._known_scopes.clear()
            if len(items) > 1:  # one bad batch must not fail its neighbours
                for item in items:
                    self._commit_logs([item])
                return
            batch, done = items[0]
            self._release(batch.size)
            error = exc if isinstance(exc, StoreUnavailable) else None
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            done.set_exception(error or StoreUnavailable(f"write failed: {first_line}"))
            log.warning("write of %d log records failed: %s", batch.size, exc)
            return
        for batch, done in items:
            self._release(batch.size)
            done.set_result(0)

    def _insert_logs(self, batches: Sequence[LogBatch]) -> None:
        resources: dict[int, tuple[str, str, bytes]] = {}
        scopes: dict[int, tuple[str, str, str, bytes]] = {}
        for batch in batches:
            for rid, resource in batch.resources.items():
                if rid not in self._known_resources:
                    resources[rid] = resource
            for sid, scope in batch.scopes.items():
                if sid not in self._known_scopes:
                    scopes[sid] = scope
        if resources:
            ids = sorted(resources)
            self._insert_table(
                "seqtrace_resources",
                pa.table(
                    {
                        "resource_id": pa.array(ids, pa.uint64()),
                        "service_name": [resources[i][0] for i in ids],
                        "schema_url": [resources[i][1] for i in ids],
                        "raw": pa.array([resources[i][2] for i in ids], pa.binary()),
                    }
                ),
            )
        if scopes:
            ids = sorted(scopes)
            self._insert_table(
                "seqtrace_scopes",
                pa.table(
                    {
                        "scope_id": pa.array(ids, pa.uint64()),
                        "name": [scopes[i][0] for i in ids],
                        "version": [scopes[i][1] for i in ids],
                        "schema_url": [scopes[i][2] for i in ids],
                        "raw": pa.array([scopes[i][3] for i in ids], pa.binary()),
                    }
                ),
            )
        # Records last: a failure before them stores none, and the client's retry
        # writes them once (the extra reference rows are collapsed by their tables).
        self._insert_table(LOGS_TABLE, pa.concat_tables([b.logs for b in batches]))
        self._known_resources.update(resources)
        self._known_scopes.update(scopes)

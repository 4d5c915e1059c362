"""Log records in the DuckDB store: the same durable path as spans, and their reads.

A mixin of :class:`spanstore.duckdb_store.DuckDBStore`, kept apart so that the span store
stays as it is: ``write_logs`` decodes a request (``spanstore.logs.prepare_logs``),
appends it to the same ingest journal, acknowledges once that is synced, and queues it for
the same writer thread, which appends log batches in journal order between span batches
(``_store_items``) inside the same transactions; until their COMMIT, reads see them
beside the table as they see span batches (``spanstore/unseen.py``), without waiting; the
journal's replay loads log records too (``_append_logs``). A log batch is never split
across transactions, so a committed ``journal_seq`` never stands for part of one, and
replay needs no de-duplication for it.
Log records have no ids of their own: an export the client re-sends after a lost answer
is stored twice (OTLP gives the receiver nothing to tell a retry from a repeat).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import TYPE_CHECKING, Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from spanstore.base import StoreError, StoreUnavailable, WriteResult
from spanstore.journal import Journal, JournalError
from spanstore.logs import LogBatch, decode_log_batch, encode_log_batch
from spanstore.writer import Queued

if TYPE_CHECKING:
    import duckdb

    from spanstore.admission import WaitingSpans
    from spanstore.budget import MemoryBudget
    from spanstore.decode.front import RequestDecoder
    from spanstore.writer import WriterThread

__all__ = ["DuckDBLogs"]

log = logging.getLogger(__name__)


class DuckDBLogs:
    """Log writes and reads over the state of a DuckDBStore (see the module docstring)."""

    # What the mixin uses of DuckDBStore (declared for the type checker).
    if TYPE_CHECKING:
        read_only: bool
        max_journal_bytes: int
        queue_budget: MemoryBudget
        _closed: bool
        _broken: str | None
        _writer: WriterThread | None
        _journal: Journal | None
        _decode: RequestDecoder
        _waiting: WaitingSpans
        _ingest_lock: threading.Lock
        _pending_lock: threading.Lock
        _pending: dict[int, frozenset[bytes]]
        _unseen: dict[int, Any]
        _queued_seq: int
        _skip_upto: int

        def _refuse(self, message: str | None = None) -> Any: ...
        def _admitted(
            self, request: Any, timeout: float | None, decode: Any, unit: Any
        ) -> tuple[LogBatch, int]: ...
        def _release_spans(self, count: int) -> None: ...
        def _append_references(self, con: Any, batch: LogBatch) -> None: ...
        def _appended(self, con: Any, tx: Any, append: Any, batch: LogBatch) -> bool: ...
        def _commit_if_due(self, con: Any, tx: Any) -> None: ...
        def _store_group(self, con: Any, tx: Any, group: list[Any]) -> Any: ...
        def _cursor(self) -> contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]: ...

    #: Whether the file has a ``logs`` table (a version-2 file opened read-only has none).
    _has_logs: bool = True

    # ------------------------------------------------------------------ writes

    def write_logs(
        self, request: ExportLogsServiceRequest | bytes, timeout: float | None = None
    ) -> WriteResult:
        """Store the request's valid log records; returns once they are durable (journal)."""
        if self.read_only or self._writer is None or self._journal is None:
            raise StoreError("this store was opened read-only")
        if self._closed:
            raise StoreUnavailable("the store is shutting down")
        batch, nbytes = self._admitted(request, timeout, self._decode.prepare_logs, "rows")
        result = WriteResult(
            accepted=batch.size, rejected=batch.rejected, messages=tuple(batch.messages)
        )
        if not batch.size:
            return result
        record = batch.wire if batch.wire is not None else encode_log_batch(batch)
        seq = 0
        try:
            with self._ingest_lock:
                seq = self._journal.append(record)
                with self._pending_lock:
                    self._pending[seq] = frozenset()
                    # Readers see it from now on, beside the tables (spanstore/unseen.py).
                    self._unseen[seq] = batch
                    self._queued_seq = seq
                self._writer.put(Queued(batch, seq, nbytes))
        except BaseException as exc:
            if seq == 0:
                self.queue_budget.release(nbytes)
                self._release_spans(batch.size)
            if isinstance(exc, JournalError):
                raise StoreUnavailable(f"{exc.strerror or exc}; retry later") from None
            raise
        try:
            self._journal.sync(seq)
        except JournalError as exc:
            raise StoreUnavailable(f"{exc.strerror or exc}; retry later") from None
        return result

    def _store_items(self, con: Any, tx: Any, group: list[Queued]) -> Any:
        """The writer's step for a run of queued items: span batches as before
        (``_store_group``), log batches appended in journal order between them."""
        run: list[Queued] = []
        for item in group:
            if isinstance(item.batch, LogBatch):
                if run:
                    con = self._store_group(con, tx, run)
                    run = []
                con = self._store_log_item(con, tx, item.batch, item)
            else:
                run.append(item)
        if run:
            con = self._store_group(con, tx, run)
        return con

    def _store_log_item(self, con: Any, tx: Any, batch: LogBatch, item: Queued) -> Any:
        seq, charged = item.seq, item.charged
        try:
            if con is None or self._broken is not None or seq <= self._skip_upto:
                return con  # in the journal: loaded when the database is open again
            if not self._appended(con, tx, self._append_logs, batch):
                return con
            tx.add(batch.size, seq)
            tx.nbytes += charged
            self._commit_if_due(con, tx)  # a log batch is never split
            return con
        finally:
            self.queue_budget.release(charged)
            self._release_spans(batch.size)

    def _append_logs(self, con: duckdb.DuckDBPyConnection, batch: LogBatch) -> None:
        """Append one log batch (and its new resources and scopes) in the open transaction."""
        self._append_references(con, batch)
        con.register("new_logs", batch.logs)
        try:
            con.execute("INSERT INTO logs BY NAME SELECT * FROM new_logs")
        finally:
            con.unregister("new_logs")

    def _replay_log_record(self, con: duckdb.DuckDBPyConnection, payload: bytes) -> int:
        """Append a journal record of logs during replay; returns how many records."""
        batch = decode_log_batch(payload)
        self._append_logs(con, batch)
        return batch.size

    # ------------------------------------------------------------------ reads

    def _detect_logs_table(self, con: duckdb.DuckDBPyConnection) -> None:
        rows = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'logs'"
        ).fetchall()
        self._has_logs = bool(rows[0][0])

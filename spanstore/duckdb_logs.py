"""Log records in the DuckDB store: the same durable path as spans, and their reads.

A mixin of :class:`spanstore.duckdb_store.DuckDBStore`, kept apart so that the span store
stays as it is: ``write_logs`` decodes a request (``spanstore.logs.prepare_logs``),
appends it to the same ingest journal, acknowledges once that is synced, and queues it for
the same writer thread, which appends log batches in journal order between span batches
(``_store_items``) inside the same transactions; until their COMMIT, reads see them
beside the table as they see span batches (``spanstore/unseen.py``), without waiting; the
journal's replay loads log records too (``_append_logs``). A log batch is never split across transactions, so a committed
``journal_seq`` never stands for part of one, and replay needs no de-duplication for it.
Log records have no ids of their own: an export the client re-sends after a lost answer
is stored twice (OTLP gives the receiver nothing to tell a retry from a repeat).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import queue
import threading
from typing import TYPE_CHECKING, Any, Final

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from spanstore.base import StoreError, StoreUnavailable, WriteResult
from spanstore.journal import Journal, JournalError
from spanstore.logs import LogBatch, decode_log_batch, encode_log_batch, prepare_logs
from spanstore.wire import RESOURCE_COLUMNS, SCOPE_COLUMNS

if TYPE_CHECKING:
    import duckdb

    from spanstore.admission import WaitingSpans
    from spanstore.budget import MemoryBudget
    from spanstore.decode.front import RequestDecoder

__all__ = ["DuckDBLogs"]

log = logging.getLogger(__name__)

_ADMISSION_WAIT: Final = 1.0
_MIB: Final = 1024 * 1024


class DuckDBLogs:
    """Log writes and reads over the state of a DuckDBStore (see the module docstring)."""

    # What the mixin uses of DuckDBStore (declared for the type checker).
    if TYPE_CHECKING:
        read_only: bool
        max_journal_bytes: int
        rows_per_commit: int
        max_transaction_bytes: int
        queue_budget: MemoryBudget
        _closed: bool
        _broken: str | None
        _writer: threading.Thread | None
        _journal: Journal | None
        _decode: RequestDecoder
        _waiting: WaitingSpans
        _queue: queue.Queue[Any]
        _ingest_lock: threading.Lock
        _pending_lock: threading.Lock
        _pending: dict[int, frozenset[bytes]]
        _unseen: dict[int, Any]
        _queued_seq: int
        _skip_upto: int
        _known_resources: set[int]
        _known_scopes: set[int]
        _retention: Any

        def _refuse(self, message: str | None = None) -> Any: ...
        def _release_spans(self, count: int) -> None: ...
        def _insert_new(
            self, con: Any, table: str, columns: Any, rows: list[tuple[Any, ...]]
        ) -> None: ...
        def _commit(self, con: Any, tx: Any) -> None: ...
        def _failed(self, con: Any, exc: BaseException) -> None: ...
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
        size_hint = len(request) if isinstance(request, bytes) else request.ByteSize()
        estimate = 2 * size_hint
        wait = _ADMISSION_WAIT if timeout is None else min(_ADMISSION_WAIT, timeout / 2)
        if not self.queue_budget.try_charge(estimate, wait=wait):
            self._refuse()
        try:
            batch = self._prepare_logs(request, timeout)
        except BaseException:
            self.queue_budget.release(estimate)
            raise
        nbytes = batch.nbytes if batch.size else 0
        if nbytes > estimate:
            self.queue_budget.charge(nbytes - estimate)
        else:
            self.queue_budget.release(estimate - nbytes)
        if batch.counts:
            self._waiting.count(batch.counts)
        result = WriteResult(
            accepted=batch.size, rejected=batch.rejected, messages=tuple(batch.messages)
        )
        if not batch.size:
            return result
        # Log records count against the same queue bound as spans: they wait for the
        # same writer.
        try:
            self._waiting.admit(batch.size, unit="rows", count_refusal=False)
        except StoreUnavailable:
            self.queue_budget.release(nbytes)
            raise
        if self._journal.bytes_on_disk > self.max_journal_bytes:
            self.queue_budget.release(nbytes)
            self._release_spans(batch.size)
            self._refuse(
                f"the ingest journal holds {self._journal.bytes_on_disk // _MIB} MiB that the "
                "database has not taken yet; retry later"
            )
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
                self._queue.put((batch, seq, nbytes))
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

    def _prepare_logs(
        self, request: ExportLogsServiceRequest | bytes, timeout: float | None
    ) -> LogBatch:
        """Decode in a decoder process when the store has them (off the server's
        interpreter lock, as spans are), else here."""
        pool = self._decode.pool
        if pool is None:
            return prepare_logs(request, self._decode.policy)
        data = request if isinstance(request, bytes) else request.SerializeToString()
        try:
            return pool.prepare_logs(data, timeout)
        except multiprocessing.TimeoutError:
            raise StoreUnavailable("decoding did not finish in time; retry") from None

    def _store_items(self, con: Any, tx: Any, group: list[tuple[Any, int, int]]) -> Any:
        """The writer's step for a run of queued items: span batches as before
        (``_store_group``), log batches appended in journal order between them."""
        run: list[tuple[Any, int, int]] = []
        for item in group:
            if isinstance(item[0], LogBatch):
                if run:
                    con = self._store_group(con, tx, run)
                    run = []
                con = self._store_log_item(con, tx, item)
            else:
                run.append(item)
        if run:
            con = self._store_group(con, tx, run)
        return con

    def _store_log_item(self, con: Any, tx: Any, item: tuple[LogBatch, int, int]) -> Any:
        batch, seq, charged = item
        try:
            if con is None or self._broken is not None or seq <= self._skip_upto:
                return con  # in the journal: loaded when the database is open again
            if not tx.open:
                con.execute("BEGIN")
                tx.begin()
            try:
                self._append_logs(con, batch)
            except Exception as exc:
                tx.open = False
                self._failed(con, exc)
                return con
            tx.add(batch.size, seq)
            tx.nbytes += charged
            cleaning = self._retention is not None and self._retention.due()
            if (
                tx.rows >= self.rows_per_commit
                or tx.nbytes >= self.max_transaction_bytes
                or cleaning
            ):
                self._commit(con, tx)
            return con
        finally:
            self.queue_budget.release(charged)
            self._release_spans(batch.size)

    def _append_logs(self, con: duckdb.DuckDBPyConnection, batch: LogBatch) -> None:
        """Append one log batch (and its new resources and scopes) in the open transaction."""
        new_resources = [
            (rid, *value)
            for rid, value in batch.resources.items()
            if rid not in self._known_resources
        ]
        if new_resources:
            self._insert_new(con, "resources", RESOURCE_COLUMNS, new_resources)
            self._known_resources.update(row[0] for row in new_resources)
        new_scopes = [
            (sid, *value) for sid, value in batch.scopes.items() if sid not in self._known_scopes
        ]
        if new_scopes:
            self._insert_new(con, "scopes", SCOPE_COLUMNS, new_scopes)
            self._known_scopes.update(row[0] for row in new_scopes)
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

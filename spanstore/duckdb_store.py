"""The DuckDB backend: one writer thread owns the file; readers share it under MVCC.

DuckDB lets one process hold a database file read-write. Inside that process this class
is the only owner: the collector's threads hand prepared batches over, each is appended
to the ingest journal and acknowledged once the journal's fsync covers it; a single
writer thread then moves them into DuckDB, a row group's worth per transaction. Reads go
through :class:`~spanstore.reader.StoreReader` with this file's dialect
(``spanstore/sql/duckdb/``): cursors of their own, committed data under MVCC.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import cache
from typing import Any, Final, Literal, NoReturn, TypeVar, cast

import duckdb
import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

from spanstore.admission import WaitingSpans
from spanstore.base import (
    QueryTimeout,
    SchemaVersionError,
    StoreError,
    StoreUnavailable,
    WriteResult,
)
from spanstore.budget import MemoryBudget
from spanstore.changes import ChangeLog, hours_of
from spanstore.config import CHECKPOINT_THRESHOLD, DEFAULT_MAX_QUEUE_BYTES, size_bytes
from spanstore.deadline import (
    call_at,
    cancel_call,
    deadline_seconds,
    read_started,
    time_left,
)
from spanstore.decode.front import RequestDecoder
from spanstore.decode.prepare import PreparedBatch
from spanstore.dedup import SeenFilter, key_hashes, key_hashes_from_buffer
from spanstore.dialect import SpanLayout, parameter_names, query_names, sql_text
from spanstore.duckdb_logs import DuckDBLogs
from spanstore.failure_parts_log import FailurePartsLog
from spanstore.journal import Journal, JournalError, has_segments, journal_dir
from spanstore.log_reader import LogQueries
from spanstore.logs import LogBatch, is_log_record
from spanstore.newest import NewestSpanEnd, newest_end
from spanstore.policy import IngestPolicy
from spanstore.query import rawattrs
from spanstore.query.compiler import DUCKDB as DUCKDB_QUERY_TARGET
from spanstore.reader import FAILURE_PARTS_SCHEMA, StoreReader, split_failure_parts
from spanstore.retention import RetentionEnforcer, RetentionPolicy
from spanstore.rows import frame
from spanstore.trace_shapes import TraceShapeKeeper
from spanstore.unseen import (
    UnseenSnapshot,
    UnseenSources,
    committed_position,
    define_views,
    tables_read,
)
from spanstore.wire import (
    RESOURCE_COLUMNS,
    SCOPE_COLUMNS,
    decode_batch,
    journal_record,
    reference_table,
)
from spanstore.writer import Queued, WriterThread

__all__ = ["CHECKPOINT_THRESHOLD", "SCHEMA_VERSION", "DuckDBStore"]

log = logging.getLogger(__name__)

SCHEMA_VERSION: Final = 4
#: Older schema versions this build still opens: read-only as they are (no query reads
#: what changed), for writing after the migration ``spanstore/sql/migrate_vN_to_vM.sql``
#: has brought the file to SCHEMA_VERSION.
#: The stored version text -> the SQL that brings it one version on; a writer runs them in
#: turn (1 -> 2 -> 3) in one transaction.
_MIGRATIONS: Final = {
    "1": "migrate_v1_to_v2",
    "2": "migrate_v2_to_v3",
    "3": "migrate_v3_to_v4",
}
_FAR_PAST: Final = -(1 << 62)
_FAR_FUTURE: Final = 1 << 62
_INT64_MAX: Final = (1 << 63) - 1
#: Spans per DuckDB transaction of the writer: one row group. DuckDB compresses a full
#: row group and writes it straight to the file, without the WAL and the checkpoint that
#: would copy it again: less than half the cost per span of small transactions
#: (docs/performance.md).
ROWS_PER_COMMIT: Final = 122_880
#: Arrow bytes of one writer transaction at most (see ``max_transaction_bytes``).
MAX_TRANSACTION_BYTES: Final = 96 * 1024 * 1024
#: The longest a journaled batch waits for its transaction when ingest is slow (reads
#: never wait for it: they ask the writer to commit what was acknowledged first).
MAX_COMMIT_DELAY: Final = 60.0
#: Past this much journal not yet in DuckDB, writes are refused (retryable).
DEFAULT_MAX_JOURNAL_BYTES: Final = 1024 * 1024 * 1024
#: The seen-filter keeps what arrived in about this long (seconds): its layers are
#: forgotten this long after they filled, and when the store opens it is built from the
#: spans that started this long before the newest one. Spans that started before what
#: it forgot are checked for duplicates exactly, in DuckDB. Exporters re-send within
#: minutes, so live ingest does not pay the exact check; the filter's memory and its
#: build at open follow the recent rate, not the size of the store (reading every key
#: of a large store delayed the first export and cost memory).
DEDUP_WINDOW_S: Final = 15 * 60
#: The writer appends at most this many queued spans with one statement per table.
_COALESCE_ROWS: Final = 16_384
#: How long a read waits for the writer to commit what was acknowledged before it.
_FLUSH_WAIT: Final = 30.0
_MIB: Final = 1024 * 1024
#: Memory of a decoded batch per byte of its request, charged before decoding (the raw
#: span bytes plus the columns and index rows); corrected to the batch's size after.
_BATCH_BYTES_PER_REQUEST_BYTE: Final = 2
#: How long a write may wait for room in the queue before it is refused (retryable).
_ADMISSION_WAIT: Final = 1.0
#: How long the writer waits for work before housekeeping (retention, reopening).
_IDLE_WAIT: Final = 0.5
#: Seconds between attempts to reopen a database that a fatal error invalidated.
_REOPEN_INTERVAL: Final = 1.0
#: An open transaction of at least this many spans is committed once no batch came for
#: _IDLE_COMMIT_WAIT seconds: every read scans what is not committed (spanstore/unseen.py),
#: so after a burst the backlog should not stay in memory for MAX_COMMIT_DELAY; a trickle
#: of small exports still waits for a row group.
_IDLE_COMMIT_ROWS: Final = 10_000
_IDLE_COMMIT_WAIT: Final = 2.0
#: Read cursors kept with their views over the unseen batches (spanstore/unseen.py).
_VIEW_CURSORS: Final = 8
#: Resource and scope ids remembered as stored (saves an INSERT OR IGNORE each).
_KNOWN_LIMIT: Final = 100_000
_Request = TypeVar("_Request", ExportTraceServiceRequest, ExportLogsServiceRequest, bytes)
_Batch = TypeVar("_Batch", PreparedBatch, LogBatch)
_INSERT_NEW: Final = {
    "resources": "INSERT OR IGNORE INTO resources BY NAME SELECT * FROM new_rows",
    "scopes": "INSERT OR IGNORE INTO scopes BY NAME SELECT * FROM new_rows",
}


#: A line ``@name``: the text of ``name.sql`` in its place.
_FRAGMENT: Final = re.compile(r"^@([a-z_][a-z0-9_]*)$", re.MULTILINE)


@cache
def sql(name: str) -> str:
    """A statement from ``spanstore/sql/duckdb/NAME.sql`` (all SQL lives in those files);
    a line ``@other`` in it stands for the text of ``other.sql``, a part several files
    share."""
    return _FRAGMENT.sub(lambda match: sql(match.group(1)), sql_text("duckdb", name))


_TRACE_SHAPES: Final = re.compile(r"\btrace_shapes\b")
_SQL_COMMENT: Final = re.compile(r"--[^\n]*")  # our files put no `--` inside strings


@cache
def _without_trace_shapes(name: str) -> str:
    """``sql(name)`` for a version-3 file opened read-only: the kept trace shapes it
    reads are none (trace_shapes_none.sql), so it computes every shape."""
    empty = _SQL_COMMENT.sub("", sql("trace_shapes_none")).strip()
    return _TRACE_SHAPES.sub(lambda _: empty, _SQL_COMMENT.sub("", sql(name)))


@cache
def _tables_read(name: str) -> frozenset[str]:
    return tables_read(sql(name))


def _ids(hex_ids: Iterable[str]) -> list[bytes]:
    out = []
    for value in hex_ids:
        try:
            out.append(bytes.fromhex(value))
        except ValueError:
            continue  # not an id: it cannot match anything
    return out


def _is_fatal(exc: BaseException) -> bool:
    """DuckDB invalidates the database after a fatal error (a checkpoint that could not
    write, for one): every later statement fails until the file is opened again."""
    if isinstance(exc, duckdb.FatalException | duckdb.ConnectionException):
        return True
    return "invalidated" in str(exc) or "Connection already closed" in str(exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class DuckDBStore(DuckDBLogs, LogQueries, StoreReader):
    """Span store on one DuckDB file: SpanWriter here, SpanReader through its dialect;
    log records (write and read) in spanstore/duckdb_logs.py."""

    #: Whether the file has the ``trace_shapes`` table (schema version 4).
    _has_trace_shapes: bool = True
    _trace_shapes: TraceShapeKeeper | None = None

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        read_only: bool = False,
        entity_keys: Iterable[str] = (),
        memory_limit: str = "1GB",
        checkpoint_threshold: str = CHECKPOINT_THRESHOLD,
        threads: int = 2,
        max_queued_spans: int = 200_000,
        max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES,
        decoder_processes: int = 0,
        decoder_niceness: int = 0,
        writer_niceness: int = 0,
        policy: IngestPolicy | None = None,
        retention: RetentionPolicy | None = None,
        rows_per_commit: int = ROWS_PER_COMMIT,
        max_commit_delay: float = MAX_COMMIT_DELAY,
        max_journal_bytes: int = DEFAULT_MAX_JOURNAL_BYTES,
        keep_trace_shapes: bool = True,
    ) -> None:
        """``policy`` (attribute limits, redaction) is applied to every request before it
        is stored; ``retention`` deletes old spans in the background. ``max_queued_spans``
        and ``max_queue_bytes`` bound what waits for the writer: past either, ``write``
        raises :class:`StoreUnavailable` (retryable) at once. ``keep_trace_shapes``: the
        writer keeps each trace's fold row (spanstore/trace_shapes.py); without it, kept
        rows already there are still used while they match."""
        self.path = os.fspath(path)
        self.read_only = read_only
        self._decode = RequestDecoder(frozenset(entity_keys), policy)
        self._closed = False
        self._dialect = _DuckDBDialect(self)
        self._config: dict[str, str | bool | int | float | list[str]] = {
            "memory_limit": memory_limit,
            "threads": threads,
            # DuckDB checkpoints (moves the WAL into the file, compressing) when the WAL
            # passes this size, inside a commit. At its 16 MB default that is a third of
            # a row group, and each checkpoint rewrites the row group it appended to:
            # slower and bigger per span than at 64 MB (docs/performance.md). The price is
            # memory: DuckDB holds what is not yet checkpointed uncompressed
            # (limits.db_checkpoint_mib).
            "checkpoint_threshold": checkpoint_threshold,
        }
        if read_only and not os.path.exists(self.path):
            raise StoreUnavailable(f"no database file at {self.path}")
        if read_only:
            _load_journal_left_behind(self.path, entity_keys, memory_limit)
        #: Guards replacing ``_db`` (after a fatal error) against readers taking cursors.
        self._db_lock = threading.RLock()
        self._db = self._connect()
        #: Why the database cannot be written now (None: it can).
        self._broken: str | None = None
        self._reopens = 0
        self._check_schema()
        self._known_resources: set[int] = set()
        self._known_scopes: set[int] = set()
        #: Which hours of start time commits and retention touched (``data_versions``);
        #: the hours of the open transaction's spans wait in ``_tx_hours`` for its commit.
        self._changes = ChangeLog()
        self._tx_hours: set[int] = set()
        self.rows_per_commit = rows_per_commit
        # DuckDB holds an open transaction's rows in memory until a row group is full:
        # with large spans, commit before that would take half of its memory limit.
        self.max_transaction_bytes = min(
            MAX_TRANSACTION_BYTES, size_bytes(memory_limit) // 2 or MAX_TRANSACTION_BYTES
        )
        self.max_commit_delay = max_commit_delay
        self.max_journal_bytes = max_journal_bytes
        #: Held while a batch is checked for duplicates, journaled and queued: the order
        #: of journal records is the order of the queue, and two copies of one span
        #: cannot both pass the check.
        self._ingest_lock = threading.Lock()
        #: Journal seq -> span keys of the records not yet committed in DuckDB.
        self._pending: dict[int, frozenset[bytes]] = {}
        #: The same records' batches (spans and logs), which reads show beside the tables
        #: (spanstore/unseen.py): queued (within the queue budget) or in the writer's open
        #: transaction (within ``max_transaction_bytes``); each leaves after its COMMIT.
        self._unseen: dict[int, PreparedBatch | LogBatch] = {}
        #: (when taken, which records, the snapshot): the last snapshot of ``_unseen``,
        #: shared by the statements of requests that began before it was taken; dropped
        #: at each commit (it may hold batches the commit let go).
        self._unseen_cache: tuple[float, tuple[int, int, int], UnseenSnapshot] | None = None
        #: Each unseen record's entity and link ``_pos`` (spanstore/unseen.py), kept while
        #: the record is unseen: a batch does not change, and snapshots repeat it.
        self._unseen_places: dict[int, tuple[pa.Array, pa.Array]] = {}
        #: The tables' columns, for the views of ``define_views``.
        self._table_columns: dict[str, list[tuple[str, str]]] = {}
        #: Read cursors whose views over the unseen batches are defined (with the
        #: database they belong to: a reopen makes them useless), kept between reads.
        self._view_cursors: list[
            tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection, UnseenSources]
        ] = []
        self._pending_lock = threading.Lock()
        self._queued_seq = 0
        self._loaded_seq = 0
        #: After the journal was loaded again, queued records up to this seq are in.
        self._skip_upto = 0
        self._journal: Journal | None = None
        self._seen = SeenFilter()
        #: Spans that started before this are checked exactly: the filter forgot some.
        self._exact_before = _FAR_PAST
        if not read_only:
            try:
                self._open_journal()
                self._rebuild_seen()
            except BaseException:
                self._db.close()
                raise
        self._waiting = WaitingSpans(max_queued_spans)
        self.queue_budget = MemoryBudget(max_queue_bytes)
        #: The failure report's counts of each commit, while a report watches
        #: (spanstore/failure_parts_log.py).
        self._failure_parts: FailurePartsLog | None = None if read_only else FailurePartsLog()
        #: When the newest span ended, kept as batches are acknowledged (spanstore/newest.py):
        #: read-only, another process writes the file.
        self._newest: NewestSpanEnd | None = None if read_only else NewestSpanEnd()
        self._retention: RetentionEnforcer | None = None
        if not read_only and retention is not None and retention.enabled:
            self._retention = RetentionEnforcer(
                retention, self.path, before_delete=self._rows_may_move
            )
        #: The writer's upkeep of the kept trace shapes (spanstore/trace_shapes.py).
        if not read_only and keep_trace_shapes:
            self._trace_shapes = TraceShapeKeeper(sql)
        self._writer: WriterThread | None = None
        if not read_only:
            try:
                self._decode.start_processes(decoder_processes, decoder_niceness)
            except BaseException:
                self._db.close()  # release the file: nothing else holds it now
                raise
            self._writer = WriterThread(_DuckDBWriter(self), "seqtrace-writer", writer_niceness)
            self._writer.start()

    def _connect(self) -> duckdb.DuckDBPyConnection:
        try:
            return duckdb.connect(self.path, read_only=self.read_only, config=self._config)
        except duckdb.IOException as exc:
            text = str(exc)
            if "lock" in text.lower():
                raise StoreUnavailable(
                    f"{self.path} is held by another process (a running `seqtrace serve`?); "
                    "go through that server's query API (--api URL: reads, and `seqtrace "
                    "load`) or stop it first"
                ) from None
            raise StoreUnavailable(f"cannot open {self.path}: {text.splitlines()[0]}") from None
        except duckdb.Error as exc:
            raise StoreUnavailable(f"cannot open {self.path}: {_first_line(exc)}") from None

    def _open_journal(self) -> None:
        """Open the ingest journal and load what a previous process acknowledged but did
        not commit (it was killed, or the machine stopped)."""
        journal = Journal(journal_dir(self.path))
        self._journal = journal
        if not journal.has_records():
            # Number records after the database's position even when the journal was
            # cleared: reads tell committed records from unseen ones by it (unseen.py).
            con = self._db.cursor()
            try:
                journal.start_after(committed_position(con)[0])
            finally:
                con.close()
            return
        con = self._db.cursor()
        try:
            stored = self._replay(con)
        except duckdb.Error as exc:
            with contextlib.suppress(Exception):
                con.execute("ROLLBACK")
            raise StoreUnavailable(
                f"cannot load the ingest journal {journal.directory} into {self.path}: "
                f"{_first_line(exc)}"
            ) from None
        finally:
            con.close()
        if stored:
            log.warning("loaded %d acknowledged spans from the ingest journal", stored)

    # ------------------------------------------------------------------ schema

    def _check_schema(self) -> None:
        con = self._db.cursor()
        try:
            has_meta = con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'seqtrace_meta'"
            ).fetchall()[0][0]
            if not has_meta:
                if self.read_only:
                    raise SchemaVersionError(
                        f"{self.path} is not a seqtrace database (no seqtrace_meta table)"
                    )
                tables = con.execute("SELECT count(*) FROM information_schema.tables").fetchall()
                if tables[0][0]:
                    raise SchemaVersionError(
                        f"{self.path} holds other tables and is not a seqtrace database; "
                        "give --db a new file"
                    )
                con.execute("BEGIN")
                con.execute(sql("schema"))
                con.execute(
                    "INSERT INTO seqtrace_meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)]
                )
                con.execute("COMMIT")
                return
            rows = con.execute(
                "SELECT value FROM seqtrace_meta WHERE key = 'schema_version'"
            ).fetchall()
            found = rows[0][0] if rows else "none"
            if found != str(SCHEMA_VERSION) and found not in _MIGRATIONS:
                raise SchemaVersionError(
                    f"{self.path} has schema version {found}; this seqtrace reads version "
                    f"{SCHEMA_VERSION}. Use the seqtrace that wrote it, or a new --db file"
                )
            if found in _MIGRATIONS and not self.read_only:
                self._migrate(con, found, _MIGRATIONS[found])
            self._detect_logs_table(con)  # a version-2 file read as it is has no logs
            # A version-3 file read as it is has no kept shapes: flows compute every one.
            self._has_trace_shapes = bool(
                con.execute(
                    "SELECT count(*) FROM information_schema.tables "
                    "WHERE table_name = 'trace_shapes'"
                ).fetchall()[0][0]
            )
            if not self.read_only:
                # Indexes added within a schema version are created on the next write open.
                con.execute(sql("indexes"))
        finally:
            con.close()

    def _migrate(self, con: duckdb.DuckDBPyConnection, found: str, name: str) -> None:
        """Bring a file of an older schema version to SCHEMA_VERSION, in one transaction."""
        log.info("%s: migrating schema version %s to %s", self.path, found, SCHEMA_VERSION)
        try:
            con.execute("BEGIN")
            step: str | None = found
            while step in _MIGRATIONS:  # each file sets the version it reaches
                migration = _MIGRATIONS[step]
                con.execute(sql(migration))
                step = con.execute(
                    "SELECT value FROM seqtrace_meta WHERE key = 'schema_version'"
                ).fetchall()[0][0]
            con.execute("COMMIT")
        except duckdb.Error as exc:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise SchemaVersionError(
                f"{self.path} has schema version {found} and could not be migrated to "
                f"{SCHEMA_VERSION}: {_first_line(exc)}. Open it with the seqtrace that "
                "wrote it, or give --db a new file"
            ) from None

    # ------------------------------------------------------------------ writes

    def write(
        self, request: ExportTraceServiceRequest | bytes, timeout: float | None = None
    ) -> WriteResult:
        """Store the request's valid spans; returns once they are durable (journal)."""
        if self.read_only or self._writer is None or self._journal is None:
            raise StoreError("this store was opened read-only")
        if self._closed:
            raise StoreUnavailable("the store is shutting down")
        batch, nbytes = self._admitted(request, timeout, self._decode.prepare, "spans")
        if batch.size == 0:
            return batch.result(0)
        offered, seq, stored = batch, 0, 0
        try:
            with self._ingest_lock:
                batch, stored, hashes = self._without_stored(offered)
                if stored:
                    self._release_spans(stored)
                if batch.size:
                    seq = self._journal.append(journal_record(batch))
                    self._remember(batch, hashes)
                    with self._pending_lock:
                        self._pending[seq] = frozenset(batch.span_keys)
                        self._unseen[seq] = batch
                        self._queued_seq = seq
                    self._acknowledge_newest(batch)
                    # Readers see it from now on (spanstore/unseen.py): a result kept from
                    # before must not outlive it (the commit marks its hours again).
                    self._changes.mark(hours_of(batch.spans.column("start_unix_nano")))
                    self._writer.put(Queued(batch, seq, nbytes))
                else:
                    self.queue_budget.release(nbytes)
        except BaseException as exc:
            if seq == 0:  # not queued: give back what it was charged (less the duplicates)
                self.queue_budget.release(nbytes)
                self._release_spans(batch.size)
            if isinstance(exc, JournalError):
                raise StoreUnavailable(f"{exc.strerror or exc}; retry later") from None
            if isinstance(exc, duckdb.Error):
                raise StoreUnavailable(f"write failed: {_first_line(exc)}") from None
            raise
        if seq:
            try:
                self._journal.sync(seq)
            except JournalError as exc:
                # The record is queued and will be stored; the client's retry is
                # recognised as a duplicate, so nothing is lost or doubled.
                raise StoreUnavailable(f"{exc.strerror or exc}; retry later") from None
        return batch.result(batch.size, stored)

    def _admitted(
        self,
        request: _Request,
        timeout: float | None,
        decode: Callable[[_Request, float | None], _Batch],
        unit: Literal["spans", "rows"],
    ) -> tuple[_Batch, int]:
        """A request decoded within the queue budget, its rows admitted to the queue: the
        batch, and the bytes of the budget it holds until DuckDB has it. A batch of no
        rows holds nothing. Spans and log records (``unit`` "rows") wait for the same
        writer, so they count against the same bounds."""
        assert self._journal is not None
        # Charge an estimate before decoding (waiting briefly for room): under a flood,
        # decoding requests that cannot be queued would only burn the CPU the writer needs.
        size_hint = len(request) if isinstance(request, bytes) else request.ByteSize()
        estimate = _BATCH_BYTES_PER_REQUEST_BYTE * size_hint
        wait = _ADMISSION_WAIT if timeout is None else min(_ADMISSION_WAIT, timeout / 2)
        if not self.queue_budget.try_charge(estimate, wait=wait):
            self._refuse()
        try:
            batch = decode(request, timeout)
        except BaseException:
            self.queue_budget.release(estimate)
            raise
        # From here the batch's own size is charged (released once DuckDB has it).
        nbytes = batch.nbytes if batch.size else 0
        if nbytes > estimate:
            self.queue_budget.charge(nbytes - estimate)
        else:
            self.queue_budget.release(estimate - nbytes)
        if batch.counts:
            self._waiting.count(batch.counts)
        if batch.size == 0:
            return batch, 0
        try:
            self._waiting.admit(batch.size, unit=unit, count_refusal=unit == "spans")
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
        return batch, nbytes

    def _full_message(self) -> str:
        used = self.queue_budget.used / _MIB
        return (
            f"the write queue is full ({used:.0f} of {self.queue_budget.limit / _MIB:.0f} MiB "
            "waiting); retry later"
        )

    def _refuse(self, message: str | None = None) -> NoReturn:
        self._waiting.refused_one()
        raise StoreUnavailable(message or self._full_message())

    # ------------------------------------------------------------ de-duplication

    def _without_stored(
        self, batch: PreparedBatch
    ) -> tuple[PreparedBatch, int, npt.NDArray[np.uint64]]:
        """The batch less the spans already stored or journaled, how many those were, and
        the key hashes of the rest. Called with the ingest lock held, so two copies of a
        span cannot both pass."""
        hashes = key_hashes(batch.span_keys)
        maybe = self._seen.maybe_seen(hashes)
        starts = batch.spans.column("start_unix_nano").to_numpy()
        maybe |= starts < self._exact_before
        if not maybe.any():
            return batch, 0, hashes
        rows = np.flatnonzero(maybe)
        keys = [batch.span_keys[i] for i in rows]
        # Journaled but not yet committed first: the writer commits, then forgets them,
        # so a span missing here is already visible to the query below.
        with self._pending_lock:
            pending = list(self._pending.values())
        found = {key for key in keys if any(key in group for group in pending)}
        rest = [i for i, key in zip(rows, keys, strict=True) if key not in found]
        if rest:
            with self._raw_cursor() as con:
                stored = self._stored_among(con, batch, rest)
            found.update(batch.span_keys[row[0]] for row in stored)
        if not found:
            return batch, 0, hashes
        kept = np.array([key not in found for key in batch.span_keys], dtype=bool)
        return _without_keys(batch, found), len(found), hashes[kept]

    def _stored_among(
        self, con: duckdb.DuckDBPyConnection, batch: PreparedBatch, rows: Any
    ) -> list[tuple[Any, ...]]:
        """The exact check for the batch rows the filter flagged: which are stored."""
        starts = batch.spans.column("start_unix_nano").take(pa.array(rows)).to_pylist()
        candidates = pa.table(
            {
                "row_index": pa.array(rows, pa.int64()),
                "trace_id": batch.spans.column("trace_id").take(pa.array(rows)),
                "span_id": batch.spans.column("span_id").take(pa.array(rows)),
            }
        )
        con.register("batch_keys", candidates)
        try:
            return con.execute(
                sql("find_duplicates"), {"min_start": min(starts), "max_start": max(starts)}
            ).fetchall()
        finally:
            con.unregister("batch_keys")

    def _remember(self, batch: PreparedBatch, hashes: npt.NDArray[np.uint64]) -> None:
        """Put a journaled batch's keys in the seen-filter; forget what left the window."""
        if not batch.size:
            return
        self._seen.add(hashes, pc.max(batch.spans.column("start_unix_nano")).as_py())
        forgotten = self._seen.forget_closed_before(time.monotonic() - DEDUP_WINDOW_S)
        if forgotten is not None:
            self._exact_before = max(self._exact_before, forgotten + 1)

    def _rebuild_seen(self) -> None:
        """Build the seen-filter from the stored spans in the dedup window,
        sized for twice as many (it grows by itself after that). Called when the store
        opens, after the journal was loaded into DuckDB and before any write, so nothing
        is pending; the older spans are checked exactly."""
        with self._raw_cursor() as con:
            newest = con.execute("SELECT max(start_unix_nano) FROM spans").fetchall()[0][0]
            if newest is not None:
                self._exact_before = newest - DEDUP_WINDOW_S * 1_000_000_000
            since = {"since": self._exact_before}
            count = con.execute(
                "SELECT count(*) FROM spans WHERE start_unix_nano >= $since", since
            ).fetchall()[0][0]
            seen = SeenFilter(capacity=2 * count)
            reader = con.sql(sql("all_span_keys"), params=since).to_arrow_reader(batch_size=1 << 20)
            for record_batch in reader:
                keys = pc.cast(record_batch.column(0), pa.binary(24))
                data = keys.buffers()[1]
                offset = keys.offset * 24
                seen.add(
                    key_hashes_from_buffer(memoryview(data)[offset : offset + 24 * len(keys)]),
                    newest,
                )
        self._seen = seen

    @contextlib.contextmanager
    def _raw_cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor for the write path's own reads (no flush, no deadline)."""
        with self._db_lock:
            con = self._db.cursor()
        try:
            yield con
        finally:
            with contextlib.suppress(duckdb.Error):
                con.close()

    # ------------------------------------------------------------ the writer thread

    def _store_group(
        self,
        con: duckdb.DuckDBPyConnection | None,
        tx: _Transaction,
        group: list[Queued],
    ) -> duckdb.DuckDBPyConnection | None:
        """Append queued batches to the open transaction (opening one), committing each
        time the spans fill a row group exactly: the batch that crosses the boundary is
        split there. A transaction one request past a row group leaves a small row group
        behind that checkpoints merge and rewrite: twice the cost per span and much of
        the file in freed blocks (docs/performance.md). Their queue budget is given back
        once DuckDB holds them."""
        try:
            live = [
                (cast(PreparedBatch, item.batch), item.seq)
                for item in group
                if con is not None and self._broken is None and item.seq > self._skip_upto
            ]
            if not live or con is None:
                return con  # in the journal: loaded when the database is open again
            rest: PreparedBatch | None = _merged([batch for batch, _ in live])
            total = rest.size if rest is not None else 0
            # (rows of the group up to the end of a record, that record's seq)
            ends: list[tuple[int, int]] = []
            for batch, seq in live:
                ends.append(((ends[-1][0] if ends else 0) + batch.size, seq))
            group_bytes = sum(item.charged for item in group)
            done = 0
            while rest is not None:
                room = self.rows_per_commit - (tx.rows if tx.open else 0)
                if rest.size > room:
                    head, rest = _split(rest, room)
                else:
                    head, rest = rest, None
                if not self._appended(con, tx, self._append, head):
                    return con
                done += head.size
                # The journal position is the last record wholly in: a record cut by the
                # split is loaded again after a crash, less what is stored (``_replay``).
                whole = [(end, seq) for end, seq in ends if end <= done]
                # and how many leading spans of the next record are in (for reads,
                # spanstore/unseen.py; a group ends with all of its records in, so a cut
                # record started in this group)
                into_next = done - whole[-1][0] if whole else done
                tx.add(head.size, whole[-1][1] if whole else tx.seq, into_next)
                tx.nbytes += group_bytes * head.size // max(total, 1)
                if rest is not None:
                    self._commit(con, tx)
            self._commit_if_due(con, tx)
            return con
        finally:
            for item in group:
                self.queue_budget.release(item.charged)
                self._release_spans(item.rows)

    def _appended(
        self,
        con: duckdb.DuckDBPyConnection,
        tx: _Transaction,
        append: Callable[[duckdb.DuckDBPyConnection, _Batch], None],
        batch: _Batch,
    ) -> bool:
        """Append a batch of spans or log records in the open transaction (opening one);
        False when that failed: rolled back, and loaded from the journal (``_failed``)."""
        if not tx.open:
            con.execute("BEGIN")
            tx.begin()
        try:
            append(con, batch)
        except Exception as exc:
            tx.open = False
            self._failed(con, exc)
            return False
        return True

    def _commit_if_due(self, con: duckdb.DuckDBPyConnection, tx: _Transaction) -> None:
        """Commit a full transaction; retention runs between transactions, so while it
        has work, commit sooner."""
        cleaning = self._retention is not None and self._retention.due()
        full = tx.rows >= self.rows_per_commit or tx.nbytes >= self.max_transaction_bytes
        if full or cleaning:
            self._commit(con, tx)

    def _commit(self, con: duckdb.DuckDBPyConnection, tx: _Transaction) -> None:
        """Commit the open transaction with the journal position it reaches; after a
        whole row group of spans, checkpoint too.

        Why the checkpoint: the entity rows of a transaction do not fill whole row
        groups, so each transaction appends to the entity table's last, partial row
        group and DuckDB writes that row group again. Without a checkpoint after each
        such commit the blocks it leaves behind were never reused (a good part of the
        file stayed free blocks); with it, few are, for some time in this writer thread
        per transaction, less disk per span and a lower peak RSS (docs/performance.md)."""
        whole_row_group = tx.rows >= self.rows_per_commit
        try:
            con.execute(
                "INSERT OR REPLACE INTO seqtrace_meta VALUES ('journal_seq', ?), "
                "('journal_rows', ?)",
                [str(tx.seq), str(tx.cut)],
            )
            con.execute("COMMIT")
        except Exception as exc:
            tx.open = False
            self._failed(con, exc)
            return
        tx.open = False
        self._loaded(tx.seq)
        self._count_failure_parts(con)
        if whole_row_group:
            self._checkpoint(con)
        if self._retention is not None:
            self._housekeeping(con)
        self._keep_trace_shapes(con, idle=False)

    def _checkpoint(self, con: duckdb.DuckDBPyConnection) -> None:
        """Checkpoint after a commit. The rows are committed already: a failure only
        leaves the freed blocks for a later checkpoint, unless it broke the database."""
        try:
            con.execute("CHECKPOINT")
        except Exception as exc:
            if _is_fatal(exc):
                self._mark_broken(exc)
            else:
                log.warning("checkpoint after a commit failed: %s", _first_line(exc))

    def _loaded(self, seq: int) -> None:
        """Everything up to journal record ``seq`` is committed in DuckDB."""
        # After the commit, never before: a reader that took the version before its
        # query then sees it change (spanstore/changes.py).
        self._changes.mark(self._tx_hours)
        if self._trace_shapes is not None:
            self._trace_shapes.committed(self._tx_hours)
        self._tx_hours = set()
        with self._pending_lock:
            self._loaded_seq = max(self._loaded_seq, seq)
            for done in [s for s in self._pending if s <= seq]:
                del self._pending[done]
                self._unseen.pop(done, None)
            self._unseen_cache = None
        assert self._journal is not None
        self._journal.release(seq)

    def _failed(self, con: duckdb.DuckDBPyConnection, exc: BaseException) -> None:
        """An append or commit failed: roll back, and load the journal again once the
        database can take it (the batches were acknowledged; the journal holds them)."""
        with contextlib.suppress(Exception):
            con.execute("ROLLBACK")
        self._known_resources.clear()
        self._known_scopes.clear()
        if _is_fatal(exc):
            self._mark_broken(exc)
            return
        log.warning("writing to the database failed: %s; loading from the journal", exc)
        if not self._recover(con):
            self._mark_broken(exc)

    def _recover(self, con: duckdb.DuckDBPyConnection) -> bool:
        """Load every journal record past the database's own position, then skip the
        queued copies of those records. True when the database took them all."""
        assert self._journal is not None
        with self._ingest_lock:
            upto = self._journal.last_seq  # records after this are still queued
        try:
            self._replay(con, upto)
        except Exception as exc:
            with contextlib.suppress(Exception):
                con.execute("ROLLBACK")
            if _is_fatal(exc):
                self._mark_broken(exc)
            else:
                log.error("loading the ingest journal failed: %s", _first_line(exc))
                self._broken = _first_line(exc)
            return False
        self._skip_upto = upto
        return True

    def _replay(self, con: duckdb.DuckDBPyConnection, upto: int | None = None) -> int:
        """Append journal records past the database's ``journal_seq`` (up to ``upto``),
        a row group's worth per transaction. Returns how many spans that stored."""
        assert self._journal is not None
        rows = con.execute("SELECT value FROM seqtrace_meta WHERE key = 'journal_seq'").fetchall()
        after = int(rows[0][0]) if rows else 0
        self._journal.start_after(after)
        tx = _Transaction()
        stored = 0
        first = True
        for seq, payload in self._journal.records(after):
            if upto is not None and seq > upto:
                break
            if seq <= after:  # a record read twice is stored once (numbers only grow)
                continue
            after = seq
            if is_log_record(payload):  # logs: never split, so never partly stored
                first = False
                if not tx.open:
                    con.execute("BEGIN")
                    tx.begin()
                tx.add(self._replay_log_record(con, payload), seq)
                if tx.rows >= self.rows_per_commit:
                    self._commit_replayed(con, tx)
                continue
            batch = decode_batch(payload)
            if first:  # it may be partly stored: a commit can end inside a record
                batch = self._less_stored(con, batch)
                first = False
            if not tx.open:
                con.execute("BEGIN")
                tx.begin()
            self._append(con, batch)
            tx.add(batch.size, seq)
            stored += batch.size
            if tx.rows >= self.rows_per_commit:
                self._commit_replayed(con, tx)
        if tx.open:
            self._commit_replayed(con, tx)
        return stored

    def _less_stored(self, con: duckdb.DuckDBPyConnection, batch: PreparedBatch) -> PreparedBatch:
        """``batch`` without the spans (and their entity and link rows) already stored."""
        if not batch.size:
            return batch
        rows = self._stored_among(con, batch, list(range(batch.size)))
        if not rows:
            return batch
        trace_ids = batch.spans.column("trace_id")
        span_ids = batch.spans.column("span_id")
        stored = {trace_ids[r[0]].as_py() + span_ids[r[0]].as_py() for r in rows}
        return _without_keys(batch, stored)

    def _commit_replayed(self, con: duckdb.DuckDBPyConnection, tx: _Transaction) -> None:
        con.execute(
            "INSERT OR REPLACE INTO seqtrace_meta VALUES ('journal_seq', ?), ('journal_rows', '0')",
            [str(tx.seq)],
        )
        con.execute("COMMIT")
        tx.open = False
        self._loaded(tx.seq)

    def flush(self) -> None:
        """Before a read: wait until every acknowledged span is committed in DuckDB, so
        a client that was acknowledged reads what it sent."""
        writer = self._writer
        if writer is None or self._broken is not None or not writer.is_alive():
            return
        with self._pending_lock:
            if self._loaded_seq >= self._queued_seq:
                return
        writer.flush(_FLUSH_WAIT)

    def _housekeeping(self, con: duckdb.DuckDBPyConnection) -> None:
        """Retention, one small step, between transactions (never inside one)."""
        if self._retention is None or not self._retention.due():
            return
        deleted = 1  # until the step says otherwise: a failed step may have deleted some
        try:
            deleted = self._retention.step(con)
        except Exception as exc:
            if _is_fatal(exc):
                self._mark_broken(exc)
        finally:
            if deleted:
                # Rows of any hour may be gone. Only then: a check that deletes nothing
                # must not drop every kept answer (stats, SLO days, diagrams, failure rows).
                self._changes.mark_all()
                if self._newest is not None:
                    self._newest.forget()

    def _acknowledge_newest(self, batch: PreparedBatch) -> None:
        """Once readers see the batch (so a scan that misses it began before this, and
        :meth:`NewestSpanEnd.learned` counts it) and before its client is answered."""
        if self._newest is None:
            return
        try:
            self._newest.acknowledged(newest_end(batch.spans))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # an end past int64
            self._newest.forget()  # the scan answers (as it did for every read before)

    def _rows_may_move(self) -> None:
        """Retention is about to delete rows: kept answers and row ids are void."""
        self._changes.mark_all()
        if self._newest is not None:
            self._newest.forget()
        if self._failure_parts is not None:
            self._failure_parts.reset()

    def _count_failure_parts(self, con: duckdb.DuckDBPyConnection) -> None:
        """After a commit, while a failure report watches: count the spans committed
        since the last count for the next reports (spanstore/failure_parts_log.py)."""
        parts = self._failure_parts
        since = None if parts is None or self._broken is not None else parts.next_since()
        if parts is None or since is None:
            return
        try:
            table = con.sql(
                sql("failure_parts_committed"), params={"since": since}
            ).to_arrow_table()
        except Exception as exc:
            # Derived counts: a failure costs the next report's speed only.
            parts.reset()
            if _is_fatal(exc):
                self._mark_broken(exc)
            return
        next_rowid, rows = split_failure_parts(frame(table, FAILURE_PARTS_SCHEMA), since)
        parts.append(since, next_rowid, rows)

    def _keep_trace_shapes(self, con: duckdb.DuckDBPyConnection, *, idle: bool) -> None:
        """Between transactions: keep the trace shapes reads computed; when ``idle``
        (no batch waiting) and none were offered, backfill one hour's."""
        keeper = self._trace_shapes
        if keeper is None or self._broken is not None:
            return
        try:
            if keeper.has_offered():
                keeper.keep_offered(con)
            elif idle:
                keeper.backfill_step(con)
        except Exception as exc:
            # Derived rows: a failure costs speed only, never ingest (noted in the stats).
            if _is_fatal(exc):
                self._mark_broken(exc)

    def offer_trace_shapes(self, rows: pa.Table) -> None:
        """flow_trace_shapes.sql rows a read computed, for the writer to keep."""
        if self._trace_shapes is not None and not self._closed:
            self._trace_shapes.offer(rows)

    def _mark_broken(self, exc: BaseException) -> None:
        if self._broken is None:
            log.error("the database failed and will be reopened: %s", _first_line(exc))
        self._broken = _first_line(exc)

    def _reopen(self, con: duckdb.DuckDBPyConnection | None) -> duckdb.DuckDBPyConnection | None:
        """Open the file again after a fatal error (DuckDB replays its WAL, so everything
        committed before the error is there). Returns the writer's new cursor, or None
        when the file cannot be opened yet (the disk is still full): try again later."""
        with self._db_lock:
            if con is not None:
                with contextlib.suppress(Exception):
                    con.close()
            with contextlib.suppress(Exception):
                self._db.close()
            try:
                self._db = self._connect()
                fresh = self._db.cursor()
                fresh.execute("SELECT count(*) FROM seqtrace_meta").fetchall()
            except Exception as exc:
                self._broken = _first_line(exc)
                log.warning("reopening %s failed (will retry): %s", self.path, self._broken)
                return None
            self._known_resources.clear()
            self._known_scopes.clear()
            self._reopens += 1
            self._broken = None
            if self._failure_parts is not None:
                self._failure_parts.reset()  # counted again from a report's own row id
            log.warning("reopened %s; writes resume", self.path)
            return fresh

    def _release_spans(self, count: int) -> None:
        self._waiting.release(count)

    def _append_references(
        self, con: duckdb.DuckDBPyConnection, batch: PreparedBatch | LogBatch
    ) -> None:
        """Insert a batch's resources and scopes that are not known to be stored."""
        # New resources and scopes go in with one statement each, whatever their number
        # (a request may carry thousands of tiny resource groups).
        for table, columns, known, found in (
            ("resources", RESOURCE_COLUMNS, self._known_resources, batch.resources),
            ("scopes", SCOPE_COLUMNS, self._known_scopes, batch.scopes),
        ):
            rows = [(key, *value) for key, value in found.items() if key not in known]
            if rows:
                con.register("new_rows", reference_table(columns, rows))
                try:
                    con.execute(_INSERT_NEW[table])
                finally:
                    con.unregister("new_rows")
                known.update(row[0] for row in rows)
            # The caches only save statements: keep them bounded under unbounded cardinality.
            if len(known) > _KNOWN_LIMIT:
                known.clear()

    def _append(self, con: duckdb.DuckDBPyConnection, batch: PreparedBatch) -> None:
        """Append one (de-duplicated) batch inside the open transaction."""
        self._append_references(con, batch)
        self._tx_hours |= hours_of(batch.spans.column("start_unix_nano"))
        con.register("new_spans", batch.spans)
        con.execute("INSERT INTO spans BY NAME SELECT * FROM new_spans")
        con.unregister("new_spans")
        if batch.entities.num_rows:
            con.register("new_entities", batch.entities)
            # The batch's entity rows keep their span id (duplicates are dropped by it);
            # the table does not (schema.sql).
            con.execute(
                "INSERT INTO span_entities BY NAME SELECT * EXCLUDE (span_id) FROM new_entities"
            )
            con.unregister("new_entities")
        if batch.links.num_rows:
            con.register("new_links", batch.links)
            con.execute("INSERT INTO span_links BY NAME SELECT * FROM new_links")
            con.unregister("new_links")

    @property
    def queued_spans(self) -> int:
        return self._waiting.spans

    @property
    def accepts_writes(self) -> bool:
        return not self.read_only

    def ingest_stats(self) -> dict[str, Any]:
        """The write side's state: queue, what the policy changed, retention, health."""
        budget = self.queue_budget.snapshot()
        counts, queued, refused = self._waiting.snapshot()
        return {
            "queue": {
                "spans": queued,
                "max_spans": self._waiting.max_spans,
                "bytes": budget.used_bytes,
                "max_bytes": budget.limit_bytes,
                "peak_bytes": budget.peak_bytes,
                "refused_writes": refused,
            },
            "policy": self._decode.policy_stats(counts),
            "retention": self._retention.snapshot() if self._retention is not None else None,
            "trace_shapes": (
                self._trace_shapes.snapshot() if self._trace_shapes is not None else None
            ),
            "database": {
                "writable": self._broken is None and not self.read_only,
                "error": self._broken,
                "reopened": self._reopens,
            },
        }

    def close(self, timeout: float = 30.0) -> None:
        """Commit what is queued, then close the file."""
        if self._closed:
            return
        self._closed = True
        checkpointed = False
        if self._writer is not None:
            self._writer.stop(timeout)
            with self._db_lock, contextlib.suppress(duckdb.Error):
                self._db.execute("CHECKPOINT")
                checkpointed = True
        if self._journal is not None:
            with self._pending_lock:
                everything_in = self._loaded_seq >= self._journal.last_seq
            writer_done = self._writer is not None and not self._writer.is_alive()
            if writer_done and checkpointed and everything_in and self._broken is None:
                self._journal.clear()  # all of it is in the database file now
            self._journal.close()
        self._decode.close()
        with self._db_lock:
            for _, con, _ in self._view_cursors:
                with contextlib.suppress(duckdb.Error):
                    con.close()
            self._view_cursors.clear()
            with contextlib.suppress(duckdb.Error):
                self._db.close()

    def __enter__(self) -> DuckDBStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ reads

    @contextlib.contextmanager
    def _cursor(
        self, query: str | None = None, params: Mapping[str, object] | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read cursor; interrupted when the thread's query deadline passes. With the
        named ``query`` and its ``params``, the unseen batches it is shown are narrowed
        to the rows that query can read (``UnseenSnapshot.for_query``): with none left, a
        cursor without the views."""
        if self._closed:
            raise StoreUnavailable("the store is closed")
        # No waiting for the writer: what it has not committed is shown beside the tables
        # (spanstore/unseen.py). Taken before the cursor's snapshot: see there why.
        snapshot = self._unseen_snapshot()
        tables = None
        if snapshot is not None:
            if query is None:
                tables = snapshot.tables()
            else:
                tables = snapshot.for_query(query, params or {}, _tables_read(query))
        if self._broken is not None:
            raise StoreUnavailable(f"the database is being reopened ({self._broken})")
        left = time_left()
        if left is not None and left <= 0:
            raise QueryTimeout(_timeout_message())
        with self._db_lock:
            db = self._db
            pooled = self._pooled_cursor(db) if tables is not None else None
            try:
                con = pooled[0] if pooled is not None else db.cursor()
            except duckdb.Error as exc:
                raise StoreUnavailable(f"the database is unavailable: {_first_line(exc)}") from None
        alarm = None
        if left is not None:
            alarm = call_at(time.monotonic() + left, functools.partial(_interrupt, con))
        sources = pooled[1] if pooled is not None else None
        reusable = False
        try:
            if tables is not None:
                # Each statement picks the unseen records by the journal position of its
                # own snapshot (unseen.py). No explicit transaction: one holding DDL
                # counts as a writer's and stops the writer's CHECKPOINT.
                if sources is None:
                    sources = UnseenSources(con)
                    define_views(con, sources.showing(), self._table_columns)
                sources.show(tables)
            yield con
            reusable = sources is not None
        except duckdb.InterruptException:
            raise QueryTimeout(_timeout_message()) from None
        except (duckdb.FatalException, duckdb.ConnectionException) as exc:
            raise StoreUnavailable(f"the database is unavailable: {_first_line(exc)}") from None
        finally:
            if alarm is not None:
                cancel_call(alarm)
            if sources is not None:
                sources.clear()  # an idle cursor holds no batch
            if not (reusable and sources is not None and self._keep_cursor(db, con, sources)):
                with contextlib.suppress(duckdb.Error):
                    con.close()

    def _unseen_snapshot(self) -> UnseenSnapshot | None:
        """The acknowledged, uncommitted batches (None: there are none).

        Under a flood the set changes between any two statements, so a request's
        statements share one snapshot taken after the request began (what it must see
        is what was acknowledged before it began; a batch that left the set since is
        committed and each statement's views drop it, spanstore/unseen.py). Its tables
        are put together as statements read them."""
        started = read_started()
        with self._pending_lock:
            if not self._unseen:
                return None
            key = (next(iter(self._unseen)), self._queued_seq, len(self._unseen))
            cached = self._unseen_cache
            if cached is not None and (
                cached[1] == key or (started is not None and cached[0] >= started)
            ):
                return cached[2]
            places = self._unseen_places
            for seq in [seq for seq in places if seq not in self._unseen]:
                places.pop(seq, None)  # committed
            snapshot = UnseenSnapshot(list(self._unseen.items()), places)
            # Not kept past a commit (``_loaded`` drops it): it would hold the batches
            # the commit let go.
            self._unseen_cache = (time.monotonic(), key, snapshot)
        return snapshot

    def _pooled_cursor(
        self, db: duckdb.DuckDBPyConnection
    ) -> tuple[duckdb.DuckDBPyConnection, UnseenSources] | None:
        """A read cursor with the unseen views defined already (None: make one)."""
        while self._view_cursors:
            owner, con, sources = self._view_cursors.pop()
            if owner is db:
                return con, sources
            with contextlib.suppress(duckdb.Error):
                con.close()
        return None

    def _keep_cursor(
        self,
        db: duckdb.DuckDBPyConnection,
        con: duckdb.DuckDBPyConnection,
        sources: UnseenSources,
    ) -> bool:
        """Put a view cursor back for the next read (its sources cleared)."""
        with self._db_lock:
            if self._closed or db is not self._db or len(self._view_cursors) >= _VIEW_CURSORS:
                return False
            self._view_cursors.append((db, con, sources))
        return True

    def data_versions(self, ranges: Sequence[tuple[int, int]]) -> list[int] | None:
        # A queued batch marks its hours before it is acknowledged (``write``), so a
        # result kept from before cannot outlive a write its client was told is stored.
        # Read-only, nothing can change the file: no other process can open it for
        # writing while this one holds it, so the versions stay 0.
        return [self._changes.version(start, end) for start, end in ranges]

    def last_unix_nano(self) -> int | None:
        newest = self._newest
        if newest is None:
            return super().last_unix_nano()
        known, value, token = newest.known()
        if known:
            return value
        scanned = super().last_unix_nano()
        newest.learned(scanned, token)
        return scanned

    def _logged_failure_parts(self, since_rowid: int) -> tuple[int, pl.DataFrame] | None:
        parts = self._failure_parts
        found = None if parts is None or self._closed else parts.since(since_rowid)
        if found is None:
            return None
        next_rowid, frames = found
        if not frames:
            return next_rowid, pl.DataFrame(schema=FAILURE_PARTS_SCHEMA)
        return next_rowid, pl.concat(frames) if len(frames) > 1 else frames[0]

    def watch_failure_parts(self, next_rowid: int, needed_from: int | None = None) -> None:
        if self._failure_parts is not None and not self._closed:
            self._failure_parts.watch(next_rowid, needed_from)


class _DuckDBDialect:
    """DuckDB's primitives for the reader: ``spanstore/sql/duckdb/NAME.sql`` on a cursor
    of the store (which shows the query what was acknowledged and is not committed yet,
    spanstore/unseen.py, and interrupts the query at its deadline); parameters bound,
    never spliced. One statement per query: its views agree with its own snapshot."""

    far_past: int = _FAR_PAST
    far_future: int = _FAR_FUTURE
    ids_per_query: int = sys.maxsize  # a list parameter of any length
    span_layout: SpanLayout = "protobuf"

    def __init__(self, store: DuckDBStore) -> None:
        self._store = store

    def has_query(self, name: str) -> bool:
        return name in query_names("duckdb")

    def table(self, name: str, params: Mapping[str, object]) -> pa.Table:
        kept_shapes = self._store._has_trace_shapes
        used = parameter_names(sql(name))
        bound = {key: value for key, value in params.items() if key in used}
        with self._store._cursor(name, bound) as con:
            if kept_shapes:
                return con.sql(sql(name), params=bound or None).to_arrow_table()
            return con.sql(_without_trace_shapes(name), params=bound or None).to_arrow_table()

    def trace_ids(self, hex_ids: Iterable[str]) -> list[bytes]:
        return _ids(hex_ids)

    def id_set(self, ids: Sequence[bytes] | Sequence[str]) -> object:
        return list(ids)

    def clamp(self, unix_nano: int) -> int:
        return max(-_INT64_MAX, min(_INT64_MAX, unix_nano))

    # The query language (#17): statements compiled by spanstore.query, values bound.
    query_target = DUCKDB_QUERY_TARGET

    def run_compiled(self, statement: str, params: Mapping[str, object]) -> pa.Table:
        store = self._store
        # rawattrs' functions belong to the connection: registered again after a reopen.
        if getattr(store, "_query_functions_db", None) is not store._db:
            with store._db_lock:
                if getattr(store, "_query_functions_db", None) is not store._db:
                    rawattrs.register(store._db)
                    store._query_functions_db = store._db  # type: ignore[attr-defined]
        used = parameter_names(statement)
        bound = {key: value for key, value in params.items() if key in used}
        with store._cursor() as con:
            return con.sql(statement, params=bound or None).to_arrow_table()


class _DuckDBWriter:
    """DuckDB's side of the writer thread (``spanstore.writer``): one cursor and its open
    transaction. Batches were acknowledged at the journal's fsync, so nothing waits for
    this but readers that asked for a flush: they are appended to the open transaction, a
    row group's worth per commit (``DuckDBStore._store_group``); a transaction is
    committed when full, when it has waited ``max_commit_delay``, or after a burst once
    idle; between transactions the thread runs retention and reopens a broken file."""

    def __init__(self, store: DuckDBStore) -> None:
        self._store = store
        self._con: duckdb.DuckDBPyConnection | None = None
        self._started = False
        self._next_reopen = 0.0
        self._tx = _Transaction()

    def prepare(self) -> None:
        store = self._store
        if not self._started:  # the cursor belongs to the writer's own thread
            self._started = True
            self._con = store._db.cursor()
        if store._broken is not None and time.monotonic() >= self._next_reopen:
            self._con = store._reopen(self._con)
            self._next_reopen = time.monotonic() + _REOPEN_INTERVAL
            if self._con is not None and not store._recover(self._con):
                self._con = None

    def wait_seconds(self) -> float | None:
        tx = self._tx
        if not tx.open:
            return _IDLE_WAIT
        wait = max(0.0, tx.started + self._store.max_commit_delay - time.monotonic())
        if tx.rows >= _IDLE_COMMIT_ROWS:  # after a burst: see _IDLE_COMMIT_ROWS
            wait = min(wait, _IDLE_COMMIT_WAIT)
        return wait

    def group_full(self, rows: int) -> bool:
        return rows >= _COALESCE_ROWS or self._tx.rows + rows >= self._store.rows_per_commit

    def store(self, group: list[Queued]) -> None:
        # span batches and log batches (spanstore/duckdb_logs.py)
        self._con = self._store._store_items(self._con, self._tx, group)

    def idle(self) -> None:
        if self._tx.open and self._con is not None:
            self._store._commit(self._con, self._tx)
        elif self._con is not None and self._store._broken is None:
            self._store._housekeeping(self._con)
            self._store._keep_trace_shapes(self._con, idle=True)

    def commit(self) -> None:
        if self._tx.open and self._con is not None:
            self._store._commit(self._con, self._tx)

    def finish(self) -> None:
        if self._con is not None:
            with contextlib.suppress(duckdb.Error):
                self._con.close()


class _Transaction:
    """The writer's open DuckDB transaction: how many spans it holds, up to which seq."""

    __slots__ = ("cut", "nbytes", "open", "rows", "seq", "started")

    def __init__(self) -> None:
        self.open = False
        self.rows = 0
        self.nbytes = 0
        self.seq = 0
        #: Leading spans of the record after ``seq`` that are in too (a split record).
        self.cut = 0
        self.started = 0.0

    def begin(self) -> None:
        self.open = True
        self.rows = 0
        self.nbytes = 0
        self.started = time.monotonic()

    def add(self, rows: int, seq: int, cut: int = 0) -> None:
        self.rows += rows
        self.seq = seq
        self.cut = cut


def _merged(batches: list[PreparedBatch]) -> PreparedBatch:
    """Several batches as one (Arrow concatenation keeps the chunks: no copy)."""
    if len(batches) == 1:
        return batches[0]
    resources: dict[int, tuple[str, str, bytes]] = {}
    scopes: dict[int, tuple[str, str, str, bytes]] = {}
    for batch in batches:
        resources.update(batch.resources)
        scopes.update(batch.scopes)
    return PreparedBatch(
        spans=pa.concat_tables([b.spans for b in batches]),
        entities=pa.concat_tables([b.entities for b in batches]),
        links=pa.concat_tables([b.links for b in batches]),
        resources=resources,
        scopes=scopes,
        span_keys=[],
        min_start=min(b.min_start for b in batches),
        max_start=max(b.max_start for b in batches),
    )


def _span_keys(table: pa.Table) -> pa.ChunkedArray:
    keys: pa.ChunkedArray = pc.binary_join_element_wise(
        table.column("trace_id"), table.column("span_id"), b""
    )
    return keys


def _split(batch: PreparedBatch, rows: int) -> tuple[PreparedBatch, PreparedBatch]:
    """The first ``rows`` spans of ``batch`` (with their entity and link rows), and the
    rest. Resources and scopes go with both (they are inserted only once)."""
    spans = batch.spans
    tail_keys = _span_keys(spans.slice(rows)).combine_chunks()

    def parted(table: pa.Table) -> tuple[pa.Table, pa.Table]:
        if not table.num_rows:
            return table, table
        in_tail = pc.is_in(_span_keys(table), value_set=tail_keys)
        return table.filter(pc.invert(in_tail)), table.filter(in_tail)

    head_entities, tail_entities = parted(batch.entities)
    head_links, tail_links = parted(batch.links)

    def part(spans_part: pa.Table, entities: pa.Table, links: pa.Table) -> PreparedBatch:
        starts = spans_part.column("start_unix_nano")
        return PreparedBatch(
            spans=spans_part,
            entities=entities,
            links=links,
            resources=batch.resources,
            scopes=batch.scopes,
            span_keys=[],
            min_start=pc.min(starts).as_py() or 0,
            max_start=pc.max(starts).as_py() or 0,
        )

    return (
        part(spans.slice(0, rows), head_entities, head_links),
        part(spans.slice(rows), tail_entities, tail_links),
    )


def _without_keys(batch: PreparedBatch, drop: set[bytes]) -> PreparedBatch:
    """``batch`` less the spans (and their entity and link rows) whose key is in ``drop``;
    no longer the bytes its decoder sent (``wire``)."""
    dropped = pa.array(sorted(drop), pa.binary())

    def keep_rows(table: pa.Table) -> pa.Table:
        if not table.num_rows:
            return table
        return table.filter(pc.invert(pc.is_in(_span_keys(table), value_set=dropped)))

    return dataclasses.replace(
        batch,
        spans=keep_rows(batch.spans),
        entities=keep_rows(batch.entities),
        links=keep_rows(batch.links),
        span_keys=[key for key in batch.span_keys if key not in drop],
        wire=None,
    )


def _load_journal_left_behind(path: str, entity_keys: Iterable[str], memory_limit: str) -> None:
    """Before a read-only open: a server that was killed may have left acknowledged
    spans in its journal. Load them now if nobody holds the file (a running server
    loads its own journal); otherwise read what is committed."""
    if not has_segments(journal_dir(path)):
        return
    try:
        DuckDBStore(path, entity_keys=entity_keys, memory_limit=memory_limit).close()
    except StoreError as exc:
        log.info("the ingest journal of %s stays for its owner: %s", path, exc)


def _interrupt(con: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(Exception):
        con.interrupt()


def _timeout_message() -> str:
    seconds = deadline_seconds()
    limit = f"{seconds:g} s" if seconds is not None else "its deadline"
    return f"the query ran longer than {limit} and was stopped; narrow the time range"

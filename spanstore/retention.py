"""Retention: delete spans older than a maximum age, or the oldest ones once the database
is over a maximum size. Enforced by the store's writer thread between ingest batches.

Each step is one small transaction (``batch_rows`` spans at most), so an ingest batch
waits for at most one step (tens of milliseconds), never for a whole clean-up. After a
round of deletions the writer runs ``CHECKPOINT``: DuckDB then marks the blocks of fully
deleted row groups free (and rewrites row groups that lost many rows), and new data
reuses those blocks. The file does not shrink when the free blocks sit in its middle, so
"size" here is what the data uses: used blocks times the block size, plus the WAL.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["RetentionEnforcer", "RetentionPolicy", "RetentionStats"]

log = logging.getLogger(__name__)

_TABLES: Final = (
    "spans",
    "span_entities",
    "span_links",
    "logs",
    "trace_shapes",
    "trace_shape_hours",
)
#: The time column each table is cut by (log records: their time, as queries use it; the
#: kept trace shapes' hours: the hour's start).
_TIME_COLUMN: Final = {"logs": "time_unix_nano", "trace_shape_hours": "hour_unix_nano"}
_DELETE: Final = {
    table: f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} "
    f"WHERE {_TIME_COLUMN.get(table, 'start_unix_nano')} < $cutoff LIMIT $n)"
    for table in _TABLES
}
#: When over the size limit, delete at least this fraction of the spans per round (the
#: oldest), so that the next CHECKPOINT frees whole row groups.
_MIN_SIZE_FRACTION: Final = 0.05


#: A CHECKPOINT refused because another connection's write transaction is active (a
#: reader defining its views over the unseen batches holds one for milliseconds) is tried
#: again this many times, this far apart, before the step fails (seen once in CI).
_CHECKPOINT_TRIES: Final = 20
_CHECKPOINT_RETRY_S: Final = 0.05


def _checkpoint(con: Any) -> None:
    for attempt in range(_CHECKPOINT_TRIES):
        try:
            con.execute("CHECKPOINT")
            return
        except Exception as exc:
            if "other write transactions" not in str(exc) or attempt == _CHECKPOINT_TRIES - 1:
                raise
            time.sleep(_CHECKPOINT_RETRY_S)


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    #: Spans that started longer ago than this are deleted (None: keep by age forever).
    max_age_seconds: float | None = None
    #: Once the data uses more than this, the oldest spans are deleted (None: no limit).
    max_size_bytes: int | None = None
    #: How often the writer checks whether there is something to delete.
    interval_seconds: float = 10.0
    #: Spans (and index rows) deleted per transaction.
    batch_rows: int = 20_000

    @property
    def enabled(self) -> bool:
        return self.max_age_seconds is not None or self.max_size_bytes is not None

    def validate(self) -> RetentionPolicy:
        if self.max_age_seconds is not None and not self.max_age_seconds > 0:
            raise ValueError(f"max_age must be positive, got {self.max_age_seconds!r}")
        if self.max_size_bytes is not None and not self.max_size_bytes > 0:
            raise ValueError(f"max_size must be positive, got {self.max_size_bytes!r}")
        if not self.interval_seconds > 0:
            raise ValueError(f"interval must be positive, got {self.interval_seconds!r}")
        if self.batch_rows < 1:
            raise ValueError(f"batch_rows must be at least 1, got {self.batch_rows!r}")
        return self


@dataclass(slots=True)
class RetentionStats:
    rounds: int = 0
    deleted_spans: int = 0
    checkpoints: int = 0
    last_cutoff_unix_nano: int | None = None
    used_bytes: int | None = None
    errors: int = 0
    last_error: str | None = None


class RetentionEnforcer:
    """The writer thread's clean-up: call :meth:`step` between batches while it is due."""

    def __init__(
        self, policy: RetentionPolicy, path: str, before_delete: Callable[[], None] = lambda: None
    ) -> None:
        self.policy = policy.validate()
        self.path = path
        self.stats = RetentionStats()
        self._next_check = 0.0
        #: Spans starting before this are being deleted, table by table.
        self._cutoff: int | None = None
        self._tables: list[str] = []
        self._deleted_this_round = 0
        #: Called before each DELETE: the store marks every hour changed (row ids may move).
        self._before_delete = before_delete

    def due(self, now: float | None = None) -> bool:
        """Whether a step has work to do now (a round in progress, or the next check)."""
        if not self.policy.enabled:
            return False
        if self._cutoff is not None:
            return True
        return (time.monotonic() if now is None else now) >= self._next_check

    def step(self, con: Any) -> int:
        """One small unit of work in its own transaction(s); the rows it deleted."""
        try:
            return self._step(con)
        except Exception as exc:
            # Retention must never take ingest down: note it, try again next interval.
            self.stats.errors += 1
            self.stats.last_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("retention step failed: %s", self.stats.last_error)
            self._cutoff = None
            self._next_check = time.monotonic() + self.policy.interval_seconds
            raise

    def _step(self, con: Any) -> int:
        if self._cutoff is None:
            self._next_check = time.monotonic() + self.policy.interval_seconds
            cutoff = self._choose_cutoff(con)
            if cutoff is None:
                return 0
            self._cutoff = cutoff
            self._tables = list(_TABLES)
            self._deleted_this_round = 0
            self.stats.rounds += 1
            self.stats.last_cutoff_unix_nano = cutoff
        while self._tables:
            table = self._tables[0]
            # Readers that keep answers by row id (the failure report's counts) see the
            # change before the rows go, not only after (DuckDBStore._housekeeping).
            self._before_delete()
            deleted = con.execute(
                _DELETE[table],
                {"cutoff": self._cutoff, "n": self.policy.batch_rows},
            ).fetchall()[0][0]
            if table == "spans":
                self.stats.deleted_spans += deleted
                self._deleted_this_round += deleted
            if deleted < self.policy.batch_rows:
                self._tables.pop(0)
            if deleted:
                return int(deleted)  # one transaction per step: let ingest in
        self._cutoff = None
        if self._deleted_this_round:
            _checkpoint(con)
            self.stats.checkpoints += 1
            self.stats.used_bytes = self._used_bytes(con)
            log.info(
                "retention deleted %d spans; data uses %s bytes",
                self._deleted_this_round,
                self.stats.used_bytes,
            )
            if self.policy.max_size_bytes is not None and (
                self.stats.used_bytes > self.policy.max_size_bytes
            ):
                self._next_check = 0.0  # still too big: go again at once
        return 0

    def _choose_cutoff(self, con: Any) -> int | None:
        policy = self.policy
        cutoff: int | None = None
        if policy.max_age_seconds is not None:
            cutoff = time.time_ns() - int(policy.max_age_seconds * 1e9)
            # The oldest span start or log record time (a store may hold only logs).
            oldest = con.execute(
                "SELECT min(t) FROM (SELECT min(start_unix_nano) AS t FROM spans "
                "UNION ALL SELECT min(time_unix_nano) FROM logs)"
            ).fetchall()[0][0]
            if oldest is None or oldest >= cutoff:
                cutoff = None
        if policy.max_size_bytes is not None:
            used = self._used_bytes(con)
            self.stats.used_bytes = used
            if used > policy.max_size_bytes:
                # Delete the oldest share of spans proportional to the excess (and at
                # least a few percent, so whole row groups empty out).
                fraction = min(0.5, max(_MIN_SIZE_FRACTION, 1 - policy.max_size_bytes / used))
                row = con.execute(
                    "SELECT quantile_disc(start_unix_nano, $f) FROM spans", {"f": fraction}
                ).fetchall()[0][0]
                if row is not None:
                    by_size = int(row) + 1
                    cutoff = by_size if cutoff is None else max(cutoff, by_size)
        return cutoff

    def _used_bytes(self, con: Any) -> int:
        block_size, used_blocks = con.execute(
            "SELECT block_size, used_blocks FROM pragma_database_size()"
        ).fetchall()[0]
        wal = self.path + ".wal"
        wal_bytes = os.path.getsize(wal) if os.path.exists(wal) else 0
        return int(block_size) * int(used_blocks) + wal_bytes

    def snapshot(self) -> dict[str, Any]:
        stats = self.stats
        return {
            "max_age_seconds": self.policy.max_age_seconds,
            "max_size_bytes": self.policy.max_size_bytes,
            "rounds": stats.rounds,
            "deleted_spans": stats.deleted_spans,
            "checkpoints": stats.checkpoints,
            "used_bytes": stats.used_bytes,
            "last_cutoff_unix_nano": stats.last_cutoff_unix_nano,
            "errors": stats.errors,
            "last_error": stats.last_error,
        }

"""The failure report's counts of each committed transaction, kept by the writer thread.

The failure report keeps its counting pass between reports (``analyzer/failures_store.py``,
``KeptCounts``): per-trace counts that merge, over the committed spans below a row id,
brought up to date by reading the spans committed since that row id. Under a flood with
no report for a while, "since" is the whole flood: the first report of a reads phase after
30 s without one read 2.95M spans in 2.8 s (docs/performance.md, "#20", session 14).

So while someone watches (a report asked in the last :data:`WATCH_S`), the writer counts
each transaction's spans right after its COMMIT (``failure_parts_committed.sql``: the same
per-trace counts, over every start time, on rows the writer has just written) and keeps
them here, one entry per commit, each for the row ids [since, next) it counted. A report
then merges the entries from its own row id on and reads from the store only what was
committed after the last entry and what is not committed yet. Ingest pays a group-by per
transaction, and only while watched.

Entries form one chain of adjacent row-id ranges from where the first watcher's counts
end. Row ids move only when rows are deleted: the store resets the chain before retention
deletes (:meth:`reset`), and on any failure to count a transaction (the chain would have a
hole). A reader whose row id does not start an entry gets None and reads the store as it
would without the log; nothing here is ever needed for a correct report, only a fast one.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Final

import polars as pl

__all__ = ["MAX_LOGGED_ROWS", "WATCH_S", "FailurePartsLog"]

#: A report keeps the writer counting for this long (the UI's live mode asks every 5 s).
WATCH_S: Final = 600.0
#: Rows kept in all (per-trace counts and possible errors; ~150 B each as polars frames):
#: the oldest entries go first, and a reader older than them reads the store.
MAX_LOGGED_ROWS: Final = 400_000


class FailurePartsLog:
    """Per-commit failure counts (``reader.FAILURE_PARTS_SCHEMA`` rows, ``stored``) for row
    ids [since, next); :meth:`append` and :meth:`reset` from the writer thread,
    :meth:`watch` and :meth:`since` from readers."""

    def __init__(self, max_rows: int = MAX_LOGGED_ROWS, watch_s: float = WATCH_S) -> None:
        self.max_rows = max_rows
        self.watch_s = watch_s
        self._lock = threading.Lock()
        self._entries: deque[tuple[int, int, pl.DataFrame]] = deque()
        self._rows = 0
        self._start: int | None = None  # the row id the chain starts at (a watcher's)
        self._end: int | None = None  # the row id the next entry starts at
        self._watched_until = 0.0

    def watch(self, next_rowid: int, needed_from: int | None = None) -> None:
        """A reader's counts end at ``next_rowid``: keep counting commits for ``WATCH_S``;
        a chain not running starts there. ``needed_from``: no reader's counts end before
        this row id, so the entries that end at or before it go (the rest still serve
        every reader from there on)."""
        with self._lock:
            self._watched_until = time.monotonic() + self.watch_s
            if self._end is None:
                self._start = self._end = next_rowid
            if needed_from is not None:
                while self._entries and self._entries[0][1] <= needed_from:
                    self._drop_oldest()

    def next_since(self) -> int | None:
        """Where the writer's next count starts (None: nobody watches; the chain is
        dropped when the watch ran out)."""
        with self._lock:
            if self._end is not None and time.monotonic() > self._watched_until:
                self._clear()
            return self._end

    def append(self, since: int, next_rowid: int, parts: pl.DataFrame) -> None:
        """The counts of the committed rows [since, next_rowid); ``since`` must be where
        the chain ends (else the chain starts over: a reset came between)."""
        with self._lock:
            if since != self._end:
                return
            self._end = next_rowid
            if next_rowid > since:
                self._entries.append((since, next_rowid, parts))
                self._rows += parts.height
                while self._rows > self.max_rows and self._entries:
                    self._drop_oldest()

    def reset(self) -> None:
        """Rows may move (a deletion), or a commit went uncounted: drop the chain."""
        with self._lock:
            self._clear()

    def since(self, rowid: int) -> tuple[int, list[pl.DataFrame]] | None:
        """(the row id after the last entry, the entries' counts from ``rowid`` on); None
        when no entry starts at ``rowid`` (nor does the chain end there)."""
        with self._lock:
            if self._end is None or self._start is None or not self._start <= rowid <= self._end:
                return None
            if rowid == self._end:
                return rowid, []
            frames: list[pl.DataFrame] = []
            found = False
            for since, _, parts in self._entries:
                found = found or since == rowid
                if found:
                    frames.append(parts)
            return (self._end, frames) if found else None

    def __len__(self) -> int:
        """Rows kept."""
        return self._rows

    def _drop_oldest(self) -> None:
        """The oldest entry goes; the chain then starts at the next one (or where it ends)."""
        _, _, dropped = self._entries.popleft()
        self._rows -= dropped.height
        self._start = self._entries[0][0] if self._entries else self._end

    def _clear(self) -> None:
        self._entries.clear()
        self._rows = 0
        self._start = self._end = None

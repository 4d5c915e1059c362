"""Which hours of span start time a store has written to (or deleted from), and when.

Readers that keep results for a time range (``analyzer.source`` keeps each day's SLO
events) ask :meth:`ChangeLog.version` for the range when they compute a result and again
before they reuse it: the same number means no span starting in the range was committed
or deleted in between. The writer marks the hours of a transaction's spans *after* its
commit, and readers take the version *before* their query, so a result can only ever be
recomputed too often, never kept too long.

It also lists, per generation, the traces whose spans a write showed readers
(:meth:`ChangeLog.traces_since`), for a reader that brings a kept answer up to date trace
by trace (the failure report's counts, ``analyzer/failures_store.py``) instead of reading
a busy range again. The list is bounded: a reader whose generation is older than what it
still holds, or than a change it cannot list (retention's deletions), starts over.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spanstore.model import HOUR_NS

__all__ = ["HOUR_NS", "ChangeLog", "hours_of"]

#: Hours remembered one by one; past this (hostile start times scattered over centuries)
#: the log forgets them and treats every hour as changed now.
MAX_HOURS: Final = 100_000
#: Trace ids listed per generation, all generations together, at most (a few seconds of a
#: saturated collector's traces); older generations are forgotten.
MAX_LISTED_TRACES: Final = 200_000
#: ``mark``'s ``traces`` for a change that showed readers no new span (a commit of rows
#: they saw already).
NO_TRACES: Final = pa.array([], pa.binary())


def hours_of(starts: pa.ChunkedArray | pa.Array) -> set[int]:
    """The hour buckets (start // HOUR_NS) that span start times fall in."""
    values = np.asarray(starts.to_numpy(), dtype=np.int64)
    return {int(h) for h in np.unique(values // HOUR_NS)}


class ChangeLog:
    """A generation number per hour of span start time: the last change to that hour."""

    def __init__(self, max_listed_traces: int = MAX_LISTED_TRACES) -> None:
        self._lock = threading.Lock()
        self._generation = 0
        self._hours: dict[int, int] = {}
        self._everything = 0  # generation of the last change not tied to hours
        self._max_listed = max_listed_traces
        self._listed: deque[tuple[int, pa.Array]] = deque()  # (generation, trace ids)
        self._listed_count = 0
        self._listed_after = 0  # every generation after this one is in _listed

    def mark(self, hours: Iterable[int], traces: pa.Array | pa.ChunkedArray | None = None) -> None:
        """Spans starting in these hours were committed (or deleted). ``traces``: the
        trace ids of the spans this change showed readers (``NO_TRACES``: none new);
        None when it cannot say which traces changed."""
        listed = None if traces is None else pc.unique(traces)
        if isinstance(listed, pa.ChunkedArray):
            listed = listed.combine_chunks()
        with self._lock:
            self._generation += 1
            for hour in hours:
                self._hours[hour] = self._generation
            if len(self._hours) > MAX_HOURS:
                self._hours.clear()
                self._everything = self._generation
            if listed is None:
                self._forget_listed()
            elif len(listed):
                self._listed.append((self._generation, listed))
                self._listed_count += len(listed)
                while self._listed_count > self._max_listed:
                    generation, ids = self._listed.popleft()
                    self._listed_count -= len(ids)
                    self._listed_after = generation

    def mark_all(self) -> None:
        """Any hour may have changed (retention deleted spans, say)."""
        with self._lock:
            self._generation += 1
            self._hours.clear()
            self._everything = self._generation
            self._forget_listed()

    def _forget_listed(self) -> None:
        self._listed.clear()
        self._listed_count = 0
        self._listed_after = self._generation

    def traces_since(self, generation: int | None) -> tuple[int, pa.Array | None]:
        """(the generation now, the trace ids of the spans shown after ``generation``,
        each once); None for the ids when they are not all listed any more (or
        ``generation`` is None). Take it before the query whose answer it labels."""
        with self._lock:
            now = self._generation
            if generation is None or generation < self._listed_after:
                return now, None
            found = [ids for marked, ids in self._listed if marked > generation]
        if not found:
            return now, NO_TRACES
        return now, pc.unique(pa.concat_arrays(found))

    def version(self, start_unix_nano: int, end_unix_nano: int) -> int:
        """A number that changes whenever spans starting in [start, end) change."""
        first, last = start_unix_nano // HOUR_NS, (end_unix_nano - 1) // HOUR_NS
        with self._lock:
            if last - first + 1 > len(self._hours):
                found = [g for h, g in self._hours.items() if first <= h <= last]
            else:
                found = [self._hours.get(h, 0) for h in range(first, last + 1)]
            return max([self._everything, *found])

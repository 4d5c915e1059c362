"""Which hours of span start time a store has written to (or deleted from), and when.

Readers that keep results for a time range (``analyzer.source`` keeps each day's SLO
events) ask :meth:`ChangeLog.version` for the range when they compute a result and again
before they reuse it: the same number means no span starting in the range was committed
or deleted in between. The writer marks the hours of a transaction's spans *after* its
commit, and readers take the version *before* their query, so a result can only ever be
recomputed too often, never kept too long.

Retention marks every hour changed before each deletion and after it (``mark_all``): a
reader that keeps answers by row id (the failure report's counts,
``analyzer/failures_store.py``) sees a change whenever rows may have moved.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Final

import numpy as np
import pyarrow as pa

from spanstore.model import HOUR_NS

__all__ = ["HOUR_NS", "ChangeLog", "hours_of"]

#: Hours remembered one by one; past this (hostile start times scattered over centuries)
#: the log forgets them and treats every hour as changed now.
MAX_HOURS: Final = 100_000


def hours_of(starts: pa.ChunkedArray | pa.Array) -> set[int]:
    """The hour buckets (start // HOUR_NS) that span start times fall in."""
    values = np.asarray(starts.to_numpy(), dtype=np.int64)
    return {int(h) for h in np.unique(values // HOUR_NS)}


class ChangeLog:
    """A generation number per hour of span start time: the last change to that hour."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation = 0
        self._hours: dict[int, int] = {}
        self._everything = 0  # generation of the last change not tied to hours

    def mark(self, hours: Iterable[int]) -> None:
        """Spans starting in these hours were shown to readers, committed or deleted."""
        with self._lock:
            self._generation += 1
            for hour in hours:
                self._hours[hour] = self._generation
            if len(self._hours) > MAX_HOURS:
                self._hours.clear()
                self._everything = self._generation

    def mark_all(self) -> None:
        """Any hour may have changed (retention deletes spans, say)."""
        with self._lock:
            self._generation += 1
            self._hours.clear()
            self._everything = self._generation

    def version(self, start_unix_nano: int, end_unix_nano: int) -> int:
        """A number that changes whenever spans starting in [start, end) change."""
        first, last = start_unix_nano // HOUR_NS, (end_unix_nano - 1) // HOUR_NS
        with self._lock:
            if last - first + 1 > len(self._hours):
                found = [g for h, g in self._hours.items() if first <= h <= last]
            else:
                found = [self._hours.get(h, 0) for h in range(first, last + 1)]
            return max([self._everything, *found])

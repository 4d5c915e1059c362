"""A memory budget in bytes: what ingest may hold at once, so a flood cannot grow RSS.

Receivers charge a request's body before reading it; the store charges a prepared batch
before queueing it for the writer. A charge that does not fit may wait a short, bounded
time in a first-come-first-served line (so a burst is smoothed out and a retrying client
is not starved by luckier ones); if it still does not fit it is refused, and the caller
answers with a retryable error (HTTP 503 + Retry-After, gRPC UNAVAILABLE + RetryInfo)
instead of buffering, so memory stays bounded and clients back off.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass

__all__ = ["BudgetSnapshot", "MemoryBudget"]


@dataclass(frozen=True, slots=True)
class BudgetSnapshot:
    limit_bytes: int
    used_bytes: int
    peak_bytes: int
    refused: int
    waiting: int


class MemoryBudget:
    """A byte counter with a ceiling. Thread-safe."""

    def __init__(self, limit_bytes: int) -> None:
        if limit_bytes <= 0:
            raise ValueError(f"a memory budget must be positive, got {limit_bytes}")
        self.limit = limit_bytes
        self._used = 0
        self._peak = 0
        self._refused = 0
        self._cond = threading.Condition()
        self._line: deque[int] = deque()
        self._tickets = itertools.count()

    def _fits(self, nbytes: int, held: int) -> bool:
        # Over the limit is admitted only when nothing but the caller's own charge is
        # held, so one legal request (under the body limit) always gets through.
        return self._used + nbytes <= self.limit or self._used <= held

    def try_charge(self, nbytes: int, held: int = 0, wait: float = 0.0) -> bool:
        """Charge ``nbytes`` if they fit, waiting up to ``wait`` seconds for room.

        ``held`` is what the same caller has charged already. Returns False (nothing
        charged) when the charge still does not fit.
        """
        nbytes = max(0, nbytes)
        with self._cond:
            if not self._line and self._fits(nbytes, held):
                self._take(nbytes)
                return True
            if wait <= 0:
                self._refused += 1
                return False
            ticket = next(self._tickets)
            self._line.append(ticket)
            deadline = time.monotonic() + wait
            try:
                while True:
                    if self._line[0] == ticket and self._fits(nbytes, held):
                        self._take(nbytes)
                        return True
                    left = deadline - time.monotonic()
                    if left <= 0:
                        self._refused += 1
                        return False
                    self._cond.wait(left)
            finally:
                self._line.remove(ticket)
                self._cond.notify_all()

    def _take(self, nbytes: int) -> None:
        self._used += nbytes
        self._peak = max(self._peak, self._used)

    def charge(self, nbytes: int) -> None:
        """Charge without asking (to correct an estimate already admitted)."""
        with self._cond:
            self._take(max(0, nbytes))

    def fits(self, nbytes: int) -> bool:
        """Whether a charge of ``nbytes`` would be admitted now (nothing is charged)."""
        with self._cond:
            return not self._line and self._fits(nbytes, 0)

    def release(self, nbytes: int) -> None:
        with self._cond:
            self._used = max(0, self._used - max(0, nbytes))
            self._cond.notify_all()

    @property
    def used(self) -> int:
        return self._used

    def snapshot(self) -> BudgetSnapshot:
        with self._cond:
            return BudgetSnapshot(
                self.limit, self._used, self._peak, self._refused, len(self._line)
            )

"""What waits for a store's writer, bounded: the bookkeeping every store's write path keeps.

A write is admitted when its spans fit under the store's bound (else a retryable
:class:`StoreUnavailable`, counted as refused) and released once the writer has them; the
ingest policy's counts (redactions, truncations) add up here too. The store's own
budgets (DuckDB's queue bytes, its journal) come on top.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from spanstore.base import StoreUnavailable

__all__ = ["WaitingSpans"]


class WaitingSpans:
    """Spans queued for one store's writer, writes refused, and the policy's counts."""

    def __init__(self, max_spans: int) -> None:
        self.max_spans = max_spans
        self._lock = threading.Lock()
        self._spans = 0
        self._refused = 0
        self._counts: dict[str, int] = {}

    @property
    def spans(self) -> int:
        return self._spans

    def count(self, counts: Mapping[str, int]) -> None:
        """Add a batch's ``PreparedBatch.counts`` (what the policy changed)."""
        with self._lock:
            for name, value in counts.items():
                self._counts[name] = self._counts.get(name, 0) + value

    def admit(self, spans: int, *, unit: str = "spans", count_refusal: bool = True) -> None:
        """Take ``spans`` into the queue, or refuse the write when they do not fit (log
        records share the bound: ``unit`` names them in the message)."""
        with self._lock:
            if self._spans + spans > self.max_spans:
                self._refused += count_refusal
                raise StoreUnavailable(
                    f"the write queue is full ({self._spans} {unit} waiting); retry later"
                )
            self._spans += spans

    def release(self, spans: int) -> None:
        """The writer has these spans (or they were dropped before it)."""
        with self._lock:
            self._spans -= spans

    def refused_one(self) -> None:
        """A write refused for another reason (a store's own budget)."""
        with self._lock:
            self._refused += 1

    def snapshot(self) -> tuple[dict[str, int], int, int]:
        """(the policy's counts, spans waiting, writes refused), taken together."""
        with self._lock:
            return dict(self._counts), self._spans, self._refused

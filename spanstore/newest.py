"""The newest span end a writing store holds, kept as batches are acknowledged.

Every report of a default range ("the last hour") starts by asking when the newest span
ended (``SpanReader.last_unix_nano``): over DuckDB that is ``max(start + duration)`` over
every stored and acknowledged span, a scan of two columns of the whole table, 30-130 ms a
report under a flood (docs/performance.md, "#20", session 18) and more as the store grows.
The store that writes knows the answer: each acknowledged batch's newest end, kept here as
the batch is queued. Only deletions (retention) can lower it; they make it unknown
(:meth:`NewestSpanEnd.forget`, before and after a deletion), and the next read scans once
and tells what it found (:meth:`NewestSpanEnd.learned`), with the batches acknowledged
since the value became unknown.
"""

from __future__ import annotations

import threading

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["NewestSpanEnd", "newest_end"]


def newest_end(spans: pa.Table) -> int | None:
    """The newest ``start_unix_nano + duration_ns`` of these spans (None: no spans)."""
    if spans.num_rows == 0:
        return None
    ends = pc.add_checked(spans.column("start_unix_nano"), spans.column("duration_ns"))
    value = pc.max(ends).as_py()
    return None if value is None else int(value)


def _later(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


class NewestSpanEnd:
    """:meth:`acknowledged` from the ingest path; :meth:`known`, :meth:`learned` and
    :meth:`forget` from readers and the writer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known = False
        self._scanned: int | None = None  # while known: what the scan found (None: no spans)
        self._since_forgotten: int | None = None  # acknowledged since the last forget
        self._forgotten = 0  # how many times forgotten

    def acknowledged(self, end: int | None) -> None:
        """A batch whose newest end is ``end`` is acknowledged (readers see it)."""
        if end is None:
            return
        with self._lock:
            self._since_forgotten = _later(self._since_forgotten, end)

    def forget(self) -> None:
        """Rows may be deleted: the value is unknown until a read scans again."""
        with self._lock:
            self._known = False
            self._scanned = self._since_forgotten = None
            self._forgotten += 1

    def known(self) -> tuple[bool, int | None, int]:
        """(whether the value is known, the value, a token for :meth:`learned`): the scan's
        and what was acknowledged since the value became unknown, the later."""
        with self._lock:
            return self._known, _later(self._scanned, self._since_forgotten), self._forgotten

    def learned(self, scanned: int | None, token: int) -> None:
        """A scan that began after :meth:`known` gave ``token`` found ``scanned``: it saw
        every span acknowledged before it began, and the batches acknowledged since the
        value became unknown are counted here. Ignored when forgotten meanwhile (a
        deletion may have run under the scan)."""
        with self._lock:
            if token == self._forgotten and not self._known:
                self._scanned = scanned
                self._known = True

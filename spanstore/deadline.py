"""Per-request deadlines for reads: a server bounds how long one request may query.

``with query_deadline(5.0): ...`` sets a deadline for the calling thread; the store
interrupts any query still running when it passes (DuckDB's ``interrupt()`` from a timer)
and raises :class:`spanstore.base.QueryTimeout`. Without a deadline nothing is timed.

The same scope marks when the request's reads began (``read_started``): what was
acknowledged before then is what the request must see, so the statements of one request
may share a view of the acknowledged, uncommitted batches taken after that moment
(``spanstore/unseen.py``).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

__all__ = ["query_deadline", "read_started", "time_left"]

_local = threading.local()


@contextlib.contextmanager
def query_deadline(seconds: float | None) -> Iterator[None]:
    """Reads in this thread must finish within ``seconds`` (None: no deadline)."""
    previous = getattr(_local, "deadline", None)
    previous_start = getattr(_local, "started", None)
    now = time.monotonic()
    _local.deadline = None if seconds is None else now + seconds
    _local.seconds = seconds
    _local.started = now if previous_start is None else previous_start
    try:
        yield
    finally:
        _local.deadline = previous
        _local.started = previous_start


def time_left() -> float | None:
    """Seconds until this thread's deadline (may be <= 0), or None when it has none."""
    deadline: float | None = getattr(_local, "deadline", None)
    return None if deadline is None else deadline - time.monotonic()


def read_started() -> float | None:
    """``time.monotonic()`` when this thread's read request began (the outermost
    ``query_deadline``), or None outside one."""
    started: float | None = getattr(_local, "started", None)
    return started


def deadline_seconds() -> float | None:
    """The length of this thread's current deadline, for messages."""
    seconds: float | None = getattr(_local, "seconds", None)
    return seconds

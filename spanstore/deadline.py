"""Per-request deadlines for reads: a server bounds how long one request may query.

``with query_deadline(5.0): ...`` sets a deadline for the calling thread; the store
interrupts any query still running when it passes (DuckDB's ``interrupt()``, called by
``call_at``'s one thread) and raises :class:`spanstore.base.QueryTimeout`. Without a
deadline nothing is timed.

The same scope marks when the request's reads began (``read_started``): what was
acknowledged before then is what the request must see, so the statements of one request
may share a view of the acknowledged, uncommitted batches taken after that moment
(``spanstore/unseen.py``).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

__all__ = ["call_at", "cancel_call", "carried", "query_deadline", "read_started", "time_left"]

_local = threading.local()
_A = TypeVar("_A")
_R = TypeVar("_R")


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


def carried(function: Callable[[_A], _R]) -> Callable[[_A], _R]:
    """``function`` to call from another thread as if from this one: under this thread's
    deadline and with its read's start (so its statements see what this request must)."""
    deadline = getattr(_local, "deadline", None)
    seconds = getattr(_local, "seconds", None)
    started = getattr(_local, "started", None)

    def call(argument: _A) -> _R:
        saved = (
            getattr(_local, "deadline", None),
            getattr(_local, "seconds", None),
            getattr(_local, "started", None),
        )
        _local.deadline, _local.seconds, _local.started = deadline, seconds, started
        try:
            return function(argument)
        finally:
            _local.deadline, _local.seconds, _local.started = saved

    return call


def deadline_seconds() -> float | None:
    """The length of this thread's current deadline, for messages."""
    seconds: float | None = getattr(_local, "seconds", None)
    return seconds


class _Alarms:
    """Callbacks at given times from one thread. A thread per timed statement (what
    ``threading.Timer`` is) costs two hand-overs of the interpreter lock to start and one
    to end, and under an ingest flood each of those waits for the busy threads."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._live: set[int] = set()
        self._numbers = itertools.count(1)
        self._thread: threading.Thread | None = None

    def call_at(self, when: float, callback: Callable[[], None]) -> int:
        with self._lock:
            number = next(self._numbers)
            heapq.heappush(self._heap, (when, number, callback))
            self._live.add(number)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="seqtrace-deadlines", daemon=True
                )
                self._thread.start()
            elif self._heap[0][1] == number:  # sooner than what the thread waits for
                self._lock.notify()
        return number

    def cancel(self, number: int) -> None:
        """After this returns the callback does not run (it may have run already)."""
        with self._lock:
            self._live.discard(number)

    def _run(self) -> None:
        with self._lock:
            while True:
                while self._heap and self._heap[0][1] not in self._live:
                    heapq.heappop(self._heap)  # cancelled
                if not self._heap:
                    self._lock.wait()
                    continue
                when, number, callback = self._heap[0]
                delay = when - time.monotonic()
                if delay > 0:
                    self._lock.wait(delay)
                    continue
                heapq.heappop(self._heap)
                self._live.discard(number)
                # Under the lock: once ``cancel`` returned, no callback of that number
                # can still be running (a late interrupt would stop the cursor's next
                # statement). The callbacks are short (DuckDB's interrupt sets a flag).
                with contextlib.suppress(Exception):
                    callback()


_alarms = _Alarms()


def call_at(when: float, callback: Callable[[], None]) -> int:
    """Run ``callback`` at ``time.monotonic()`` ``when`` (from one shared thread), unless
    :func:`cancel_call` is given the number returned first."""
    return _alarms.call_at(when, callback)


def cancel_call(number: int) -> None:
    _alarms.cancel(number)

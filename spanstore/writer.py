"""The one writer thread of a store, engine-neutral: queue, group commit loop, shutdown.

Every store moves queued batches into its engine on a single thread (one connection, large
appends). What that thread does is the same for every engine and lives here: take what is
queued, several batches at once up to the engine's group size, hand them to the engine,
commit when the engine's wait runs out or a reader asks for it, and stop after the last
queued batch when the store closes. What a write *is* belongs to the engine
(:class:`WriterEngine`): DuckDB appends to an open transaction and commits a row group's
worth with the journal position (its batches were acknowledged at the journal's fsync);
ClickHouse inserts each group at once and resolves the writers' futures (acknowledged
after the insert). Errors are the engine's to handle inside ``store``/``commit``: an
exception that escapes them stops the thread, and the readers waiting on it are woken.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

from spanstore.niceness import lower_thread_priority

if TYPE_CHECKING:
    from spanstore.decode.prepare import PreparedBatch
    from spanstore.logs import LogBatch

__all__ = ["Queued", "WriterEngine", "WriterThread", "each_on_its_own"]

_STOP: Final = object()


@dataclass(slots=True)
class Queued:
    """One batch waiting for the writer, and what its store needs back when it is in."""

    batch: PreparedBatch | LogBatch
    #: Its journal record (0: the store keeps no journal).
    seq: int = 0
    #: Bytes of the store's queue budget it holds until the engine has it.
    charged: int = 0
    #: Resolved with the number of duplicates dropped, or the error, once it is written
    #: (None: the write was acknowledged already, at the journal's fsync).
    done: Future[int] | None = None

    @property
    def rows(self) -> int:
        return self.batch.size


class WriterEngine(Protocol):
    """What an engine supplies to the writer thread."""

    def wait_seconds(self) -> float | None:
        """How long to wait for work before ``idle`` (None: until work comes). Called
        before each wait, after ``prepare``."""
        ...

    def prepare(self) -> None:
        """Before waiting: make the engine writable again if it failed (reopen)."""
        ...

    def group_full(self, rows: int) -> bool:
        """Whether a group of ``rows`` queued rows is as large as one append should be."""
        ...

    def store(self, group: list[Queued]) -> None:
        """Write a group of queued batches (committing as the engine's policy says) and
        give back what they hold (queue budget, futures)."""
        ...

    def idle(self) -> None:
        """No work came within ``wait_seconds``: commit what is open, or housekeeping."""
        ...

    def commit(self) -> None:
        """Commit whatever is open now (a reader asked for it, or the store closes)."""
        ...

    def finish(self) -> None:
        """The thread ends: let go of its connection."""
        ...


class WriterThread:
    """The store's single writer thread over an engine (see the module docstring)."""

    def __init__(self, engine: WriterEngine, name: str, niceness: int = 0) -> None:
        self._engine = engine
        #: Steps nicer than the server the thread runs (spanstore/niceness.py).
        self._niceness = niceness
        self._queue: queue.Queue[Queued | threading.Event | object] = queue.Queue()
        self._flush_lock = threading.Lock()
        self._flushers: list[threading.Event] = []
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, item: Queued) -> None:
        self._queue.put(item)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def flush(self, wait: float) -> None:
        """Ask the writer to commit what is queued, and wait for it (at most ``wait`` s)."""
        done = threading.Event()
        with self._flush_lock:
            self._flushers.append(done)
        self._queue.put(done)
        done.wait(wait)
        with self._flush_lock:
            if done in self._flushers:
                self._flushers.remove(done)

    def stop(self, timeout: float) -> bool:
        """Write what is queued, commit, and end the thread; True when it ended in time."""
        self._queue.put(_STOP)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        engine = self._engine
        lower_thread_priority(self._niceness)
        try:
            while True:
                engine.prepare()
                try:
                    item = self._queue.get(timeout=engine.wait_seconds())
                except queue.Empty:
                    engine.idle()
                    continue
                # What is waiting goes in together: an append costs about the same whatever
                # its size, so a backlog of small requests is cleared in a few.
                group: list[Queued] = []
                rows = 0
                while isinstance(item, Queued):
                    group.append(item)
                    rows += item.rows
                    if engine.group_full(rows):
                        item = None
                        break
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        item = None
                if group:
                    engine.store(group)
                if item is _STOP:
                    engine.commit()
                    return
                if isinstance(item, threading.Event):  # a reader wants what was acked
                    engine.commit()
                    item.set()
        finally:
            with self._flush_lock:
                for waiting in self._flushers:
                    waiting.set()
            engine.finish()


def each_on_its_own(
    group: Sequence[Queued],
    write: Callable[[list[Queued]], list[int]],
    failed: Callable[[Queued, Exception], None],
) -> None:
    """Write a group and resolve its futures with ``write``'s duplicate counts; when the
    group fails, write each batch on its own, so that one bad batch does not fail its
    neighbours (``failed`` is told of the one that still fails)."""
    try:
        duplicates = write(list(group))
    except Exception as exc:
        if len(group) > 1:
            for item in group:
                each_on_its_own([item], write, failed)
            return
        failed(group[0], exc)
        return
    for item, count in zip(group, duplicates, strict=True):
        if item.done is not None:
            item.done.set_result(count)

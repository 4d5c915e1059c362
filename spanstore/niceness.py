"""Lower the scheduling priority of one thread of the server (Linux), as ``nice`` does for
a process.

Under an ingest flood the server's own process holds the threads that take spans in (the
receivers' request threads, the store's writer) beside the threads that answer reads (the
UI, the query API). At the same priority a read shares the two cores with all of them and
takes several times as long as idle; with the ingest threads a few steps nicer, the
scheduler runs a read first and ingest takes the CPU back as soon as the read is done
(docs/config.md, "Reads under load"). The decoder processes are niced as processes
(``spanstore/decode/pool.py``); a thread needs Linux, where each thread has a niceness of
its own.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

from spanstore.config import MAX_NICENESS

__all__ = ["lower_thread_priority"]

log = logging.getLogger(__name__)


def lower_thread_priority(steps: int) -> bool:
    """Make the calling thread ``steps`` nicer than it is (at most ``MAX_NICENESS``).

    Only this thread changes: the threads it starts later inherit its niceness, the others
    keep theirs. An unprivileged process cannot make a thread less nice again, so only ever
    call this on threads that stay nice (a pool's worker, the writer). Returns False where
    threads have no niceness of their own (not Linux) or the system refused."""
    if steps <= 0:
        return True
    if not sys.platform.startswith("linux"):
        # Elsewhere a thread id is no process id: setpriority would nice the whole
        # process, or another process whose id happens to match.
        return False
    thread = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(MAX_NICENESS, current + steps))
    except OSError as exc:
        log.info("could not lower the priority of thread %s: %s", thread, exc)
        return False
    return True

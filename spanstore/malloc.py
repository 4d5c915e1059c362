"""Give freed memory back to the system promptly (glibc), for the long-lived server.

Ingest allocates many large short-lived buffers: request bodies, decoded batches and
their journal records, megabytes each. glibc serves a large allocation with its own
memory map and unmaps it on free, but only below a threshold that it raises every time
such a map is freed (up to 32 MiB); after the first few requests, megabyte buffers come
from the heap instead, whose free space is rarely returned, and the server's resident
memory climbs to the busiest moment's peak and stays there. Fixing the threshold keeps
large buffers mapped (and unmapped on free); capping the arenas stops every thread that
ever allocated from keeping a heap of its own. Measured: docs/performance.md.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from typing import Final

__all__ = ["release_memory_promptly"]

log = logging.getLogger(__name__)

_M_MMAP_THRESHOLD: Final = -3
_M_ARENA_MAX: Final = -8
#: Allocations from this size up get a map of their own, returned to the system on free.
MMAP_THRESHOLD_BYTES: Final = 256 * 1024
ARENAS: Final = 2


def release_memory_promptly() -> bool:
    """Tune glibc's allocator for this process; False where there is no glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl, macOS): nothing to tune
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    done = bool(mallopt(_M_ARENA_MAX, ARENAS)) and done
    if not done:
        log.info("mallopt refused the memory settings; running with glibc's defaults")
    return done

"""The ingest journal: an append-only, fsynced log of prepared batches.

Why it exists: an export may be acknowledged only once its spans are safe on disk, and a
DuckDB commit is a poor place to wait for that. Every commit that crosses the WAL
threshold runs a checkpoint that blocks every other commit, and small transactions cost
DuckDB more per span than whole row groups, which it compresses and writes straight to
the file (docs/performance.md).
So the store appends each request's prepared batch to this journal, fsyncs (one fsync
covers every record written before it: group commit), acknowledges, and its writer
thread moves the batches into DuckDB in row-group-sized transactions in the background.
Each of those transactions records the highest journal sequence number it holds in
``seqtrace_meta`` (``journal_seq``), atomically with the rows; on open, records past it
are replayed. Segments whose records are all in DuckDB are deleted.

Layout: a directory ``<database>.journal/`` of segment files ``<first seq>.seg``. A
record is a header (magic, payload length, sequence number, CRC-32 of the payload) and
the payload. Replay stops at the first record that is short or fails its CRC: that one
was being written when the process died and was never acknowledged.

The journal stores bytes only; ``spanstore.duckdb_store`` decides what a payload is.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Final

__all__ = ["Journal", "JournalError", "has_segments", "journal_dir"]

_MAGIC: Final = 0x53514A31  # "SQJ1"
_HEADER: Final = struct.Struct("<IIQI")
#: A new segment starts once the current one is this large.
SEGMENT_BYTES: Final = 64 * 1024 * 1024
_SUFFIX: Final = ".seg"


class JournalError(OSError):
    """The journal could not be written (a full disk, for one): nothing was acknowledged."""


def journal_dir(database: str | os.PathLike[str]) -> Path:
    """Where the journal of ``database`` lives: beside it, named after it."""
    return Path(f"{os.fspath(database)}.journal")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _intact_records(data: bytes) -> Iterator[tuple[int, bytes, int]]:
    """(seq, payload, end offset) of a segment's records, in order, up to the first torn
    or corrupt one."""
    at = 0
    while at + _HEADER.size <= len(data):
        magic, length, seq, crc = _HEADER.unpack_from(data, at)
        end = at + _HEADER.size + length
        if magic != _MAGIC or end > len(data):
            return
        payload = data[at + _HEADER.size : end]
        if zlib.crc32(payload) != crc:
            return
        yield seq, payload, end
        at = end


def _scan(data: bytes) -> tuple[int, int]:
    """(the last intact record's seq or 0, the offset where intact records end)."""
    last = intact = 0
    for seq, _payload, end in _intact_records(data):
        last, intact = seq, end
    return last, intact


def has_segments(directory: Path) -> bool:
    """Whether a journal directory holds records (a non-empty segment), without opening
    it: a ``Journal`` cuts a torn tail off, which only the process that owns the
    database may do (for anyone else, the tail may be a record being appended)."""
    if not directory.is_dir():
        return False
    for path in directory.glob(f"*{_SUFFIX}"):
        try:
            if path.stat().st_size > 0:
                return True
        except FileNotFoundError:
            continue  # its owner deleted it: its records are in the database
    return False


class Journal:
    """Appends records, makes them durable in groups, replays them, drops loaded ones.

    ``append`` is called with the store's ingest lock held (records are numbered in the
    order they are queued for DuckDB); ``sync`` is called without it, by every writer
    after its append, and one fsync serves all writers waiting at that moment.
    """

    def __init__(self, directory: Path, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._synced_cond = threading.Condition(threading.Lock())
        self._fd: int | None = None
        self._segment_size = 0
        #: (first seq, path) of every segment on disk, oldest first.
        self._segments: list[tuple[int, Path]] = []
        self._last_seq = 0
        self._written_seq = 0
        self._synced_seq = 0
        self._syncing = False
        self._bytes_on_disk = 0
        self._scan_existing()

    # ------------------------------------------------------------------ opening

    def _scan_existing(self) -> None:
        """Find the segments, the last sequence number and a torn tail, reading only the
        newest segment (and older ones only while the newer hold no intact record):
        numbers grow from segment to segment, and only the last one is ever appended to."""
        if not self.directory.exists():
            return
        for path in self.directory.glob(f"*{_SUFFIX}"):
            try:
                first = int(path.stem)
            except ValueError:
                continue  # not ours
            self._segments.append((first, path))
            self._bytes_on_disk += path.stat().st_size
        self._segments.sort()
        for index in range(len(self._segments) - 1, -1, -1):
            path = self._segments[index][1]
            data = path.read_bytes()
            last, intact = _scan(data)
            if index == len(self._segments) - 1 and intact != len(data):
                # A half-written last record (never acknowledged): cut it off, so records
                # appended from now on follow intact ones and replay reaches them.
                with open(path, "r+b") as segment:
                    segment.truncate(intact)
                    os.fsync(segment.fileno())
                self._bytes_on_disk -= len(data) - intact
            if last:
                self._last_seq = last
                break
        self._written_seq = self._synced_seq = self._last_seq

    @property
    def last_seq(self) -> int:
        """The highest sequence number written (0 for an empty journal)."""
        return self._last_seq

    @property
    def bytes_on_disk(self) -> int:
        return self._bytes_on_disk

    def has_records(self) -> bool:
        return bool(self._segments)

    def start_after(self, seq: int) -> None:
        """Number new records after ``seq`` too (the database may have seen higher ones
        than a journal whose loaded segments were deleted)."""
        with self._lock:
            self._last_seq = max(self._last_seq, seq)
            self._written_seq = max(self._written_seq, self._last_seq)
            self._synced_seq = max(self._synced_seq, self._last_seq)

    def records(self, after: int = 0) -> Iterator[tuple[int, bytes]]:
        """(seq, payload) of every intact record with a sequence number above ``after``,
        in order; stops at the first torn or corrupt record. A segment whose successor
        starts at or below ``after + 1`` holds nothing above ``after`` and is not read."""
        segments = list(self._segments)
        for index, (_first, path) in enumerate(segments):
            if index + 1 < len(segments) and segments[index + 1][0] <= after + 1:
                continue
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue  # deleted since: its records are loaded
            intact = 0
            for seq, payload, end in _intact_records(data):
                intact = end
                if seq > after:
                    yield seq, payload
            if intact != len(data):
                return  # a torn tail: nothing after it was ever acknowledged

    # ------------------------------------------------------------------ writing

    def append(self, payload: bytes) -> int:
        """Write one record (not yet durable: call ``sync``); returns its sequence number.
        Raises JournalError when it cannot be written."""
        with self._lock:
            seq = self._last_seq + 1
            record = _HEADER.pack(_MAGIC, len(payload), seq, zlib.crc32(payload)) + payload
            try:
                if self._fd is None or self._segment_size >= self.segment_bytes:
                    self._open_segment(seq)
                assert self._fd is not None
                written = os.write(self._fd, record)
                if written != len(record):
                    raise OSError(28, "short write to the journal")
            except OSError as exc:
                self._undo_partial(record)
                raise JournalError(exc.errno, f"cannot write the ingest journal: {exc}") from None
            self._segment_size += len(record)
            self._bytes_on_disk += len(record)
            self._last_seq = seq
            self._written_seq = seq
            return seq

    def _undo_partial(self, record: bytes) -> None:
        """Cut a half-written record off, so the records after it stay readable."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, self._segment_size)
            os.lseek(self._fd, self._segment_size, os.SEEK_SET)

    def _open_segment(self, first_seq: int) -> None:
        if self._fd is not None:
            os.fsync(self._fd)  # the old segment's records are durable before it closes
            os.close(self._fd)
            self._fd = None
            with self._synced_cond:
                self._synced_seq = max(self._synced_seq, self._written_seq)
                self._synced_cond.notify_all()
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{first_seq:020d}{_SUFFIX}"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._segment_size = os.fstat(self._fd).st_size
        _fsync_dir(self.directory)  # the new file's name is durable too
        # A segment left empty by a cut torn record has this very name: list it once.
        if not self._segments or self._segments[-1][1] != path:
            self._segments.append((first_seq, path))

    def sync(self, seq: int) -> None:
        """Return once record ``seq`` is on disk. One fsync serves every waiting writer."""
        with self._synced_cond:
            while self._synced_seq < seq and self._syncing:
                self._synced_cond.wait()
            if self._synced_seq >= seq:
                return
            self._syncing = True
        # Lock order is self._lock, then the condition (as in _open_segment): never both
        # the other way round. The descriptor is duplicated so a segment switch cannot
        # close it (or hand its number to another file) while it is being synced.
        target, fd = 0, -1
        try:
            with self._lock:
                target = self._written_seq
                if self._fd is not None:
                    fd = os.dup(self._fd)
            if fd >= 0:
                os.fsync(fd)
        except OSError as exc:
            target = 0
            raise JournalError(exc.errno, f"cannot sync the ingest journal: {exc}") from None
        finally:
            if fd >= 0:
                os.close(fd)
            with self._synced_cond:
                self._synced_seq = max(self._synced_seq, target)
                self._syncing = False
                self._synced_cond.notify_all()

    # ------------------------------------------------------------------ trimming

    def release(self, loaded_seq: int) -> None:
        """Delete the segments whose records are all at or below ``loaded_seq`` (they are
        committed in the database). The segment being written stays."""
        with self._lock:
            while len(self._segments) > 1 and self._segments[1][0] <= loaded_seq + 1:
                _first, path = self._segments.pop(0)
                with contextlib.suppress(FileNotFoundError):
                    self._bytes_on_disk -= path.stat().st_size
                    path.unlink()

    def clear(self) -> None:
        """Delete every segment (all records are in the database and checkpointed)."""
        with self._lock:
            if self._fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._fd)
                self._fd = None
            for _first, path in self._segments:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            self._segments.clear()
            self._segment_size = 0
            self._bytes_on_disk = 0
            with contextlib.suppress(OSError):
                self.directory.rmdir()

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                with contextlib.suppress(OSError):
                    os.fsync(self._fd)
                    os.close(self._fd)
                self._fd = None

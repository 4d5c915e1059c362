"""The ingest journal: acknowledged batches are durable before DuckDB has them.

Unit tests of `spanstore.journal.Journal`, then the store around it: a process that dies
after acknowledging (here `os._exit`, in the server tests `kill -9`) loses nothing,
duplicates are caught whether their first copy is committed or only journaled, reads see
what was acknowledged before them, and the journal is gone after a clean close.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from test_collector_support import make_request

from spanstore.duckdb_store import DuckDBStore
from spanstore.journal import Journal, journal_dir
from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parents[2]


def test_records_come_back_in_order_and_numbering_goes_on_after_reopening(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path / "j")
    seqs = [journal.append(f"record {n}".encode()) for n in range(5)]
    journal.sync(seqs[-1])
    journal.close()
    again = Journal(tmp_path / "j")
    assert [(s, p.decode()) for s, p in again.records()] == [
        (n + 1, f"record {n}") for n in range(5)
    ]
    assert [s for s, _ in again.records(after=3)] == [4, 5]
    assert again.append(b"next") == 6
    again.close()


def test_a_torn_last_record_is_cut_and_later_records_stay_readable(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    for n in range(3):
        journal.append(b"x" * (100 + n))
    journal.close()
    (segment,) = (tmp_path / "j").iterdir()
    data = segment.read_bytes()
    segment.write_bytes(data[:-40])  # the process died while writing record 3
    reopened = Journal(tmp_path / "j")
    assert [s for s, _ in reopened.records()] == [1, 2]
    assert reopened.append(b"after the crash") == 3
    reopened.close()
    assert [p for _, p in Journal(tmp_path / "j").records()][-1] == b"after the crash"


def test_a_corrupt_record_ends_the_replay(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    for n in range(3):
        journal.append(bytes([n]) * 64)
    journal.close()
    (segment,) = (tmp_path / "j").iterdir()
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside record 2: its CRC no longer matches
    segment.write_bytes(bytes(data))
    assert [s for s, _ in Journal(tmp_path / "j").records()] == [1]


def test_segments_are_deleted_once_every_record_in_them_is_loaded(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j", segment_bytes=1000)
    for _ in range(10):
        journal.append(b"y" * 400)  # a new segment once 1000 bytes are past: 3 records each
    segments = sorted((tmp_path / "j").iterdir())
    assert [int(p.stem) for p in segments] == [1, 4, 7, 10]
    journal.release(3)  # records 1-3: the first segment (1-3) can go, not the second (4-6)
    assert sorted((tmp_path / "j").iterdir()) == segments[1:]
    journal.release(10)  # the segment being written stays
    assert len(list((tmp_path / "j").iterdir())) == 1
    assert [s for s, _ in journal.records()] == [10]
    journal.clear()
    assert not (tmp_path / "j").exists()


def test_one_fsync_serves_concurrent_writers(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    synced: list[int] = []
    lock = threading.Lock()

    def writer() -> None:
        for _ in range(50):
            seq = journal.append(b"z" * 100)
            journal.sync(seq)
            with lock:
                synced.append(seq)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(synced) == list(range(1, 201))
    journal.close()
    assert len(list(Journal(tmp_path / "j").records())) == 200


# ------------------------------------------------------------------ the store around it

_CRASHING_WRITER = """
import os, sys
sys.path[:0] = [{root!r}, {tests!r}]
from spanstore.duckdb_store import DuckDBStore
from test_collector_support import make_request
store = DuckDBStore({db!r}, rows_per_commit=10**9, max_commit_delay=3600)
for n in range(3):
    result = store.write(make_request(spans=100, first=n * 1000 + 1, attrs=3))
    assert result.accepted == 100
print("acknowledged", flush=True)
os._exit(0)  # no close, no commit: only the journal has the spans
"""


def test_spans_acknowledged_before_a_crash_are_loaded_from_the_journal(tmp_path: Path) -> None:
    db = tmp_path / "crash.duckdb"
    script = _CRASHING_WRITER.format(
        root=str(ROOT), tests=str(ROOT / "tests" / "collector"), db=str(db)
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "acknowledged" in done.stdout, done.stderr
    assert journal_dir(db).exists()
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM spans").fetchall()[0][0] == 0  # not in DuckDB
    con.close()
    # A read-only open loads the journal first (nobody holds the file), then reads.
    with DuckDBStore(db, read_only=True) as store:
        assert store.stats().spans == 300
    assert not journal_dir(db).exists()
    with DuckDBStore(db) as store:  # loaded once: opening again adds nothing
        assert store.stats().spans == 300


def test_duplicates_are_caught_in_the_journal_and_in_the_database(tmp_path: Path) -> None:
    request = make_request(spans=50, attrs=2)
    with DuckDBStore(tmp_path / "d.duckdb", max_commit_delay=3600) as store:
        assert store.write(request).accepted == 50
        again = store.write(request)  # the first copy is only journaled
        assert (again.accepted, again.duplicates) == (0, 50)
        store.flush()  # now it is committed
        third = store.write(request)
        assert (third.accepted, third.duplicates) == (0, 50)
        assert store.stats().spans == 50


def test_reads_see_what_was_acknowledged_before_them(tmp_path: Path) -> None:
    with DuckDBStore(tmp_path / "r.duckdb", max_commit_delay=3600) as store:
        for n in range(5):
            store.write(make_request(spans=20, first=n * 100 + 1, attrs=2))
            assert store.stats().spans == 20 * (n + 1)


def test_a_clean_close_leaves_no_journal(tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    with DuckDBStore(db) as store:
        store.write(make_request(spans=10, attrs=2))
        assert journal_dir(db).exists()
    assert not journal_dir(db).exists()
    with DuckDBStore(db, read_only=True) as store:
        assert store.stats().spans == 10


def test_a_full_row_group_is_committed_without_waiting(tmp_path: Path) -> None:
    with DuckDBStore(tmp_path / "g.duckdb", rows_per_commit=500, max_commit_delay=3600) as s:
        for n in range(6):
            s.write(make_request(spans=100, first=n * 1000 + 1, attrs=2))
        assert wait_until(lambda: s._loaded_seq >= 5)  # five requests fill one transaction exactly
        con = s._db.cursor()
        committed = con.execute("SELECT count(*) FROM spans").fetchall()[0][0]
        con.close()
        assert committed >= 500


@pytest.mark.parametrize("size", ["64MB", "1GB", "128MiB"])
def test_transactions_stay_within_half_of_duckdbs_memory(tmp_path: Path, size: str) -> None:
    with DuckDBStore(tmp_path / "m.duckdb", memory_limit=size) as store:
        expected = {"64MB": 32_000_000, "1GB": 96 * 1024 * 1024, "128MiB": 64 * 1024 * 1024}
        assert store.max_transaction_bytes == expected[size]


def test_the_journal_lives_beside_the_database(tmp_path: Path) -> None:
    assert journal_dir(tmp_path / "x.duckdb") == tmp_path / "x.duckdb.journal"
    assert os.fspath(journal_dir("a/b.db")) == "a/b.db.journal"


_SPLITTING_WRITER = """
import os, sys
sys.path[:0] = [{root!r}, {tests!r}]
from spanstore.duckdb_store import DuckDBStore
from test_collector_support import make_request
from tests.conftest import wait_until
store = DuckDBStore({db!r}, rows_per_commit=250, max_commit_delay=3600, entity_keys=["order.id"])
for n in range(3):
    store.write(make_request(spans=100, first=n * 1000 + 1, attrs=3))
# 250 spans commit: requests 1 and 2 whole, half of request 3
assert wait_until(lambda: store._loaded_seq == 2, 30), store._loaded_seq
print("committed", flush=True)
os._exit(0)
"""


def test_a_commit_that_ends_inside_a_request_is_completed_once_after_a_crash(
    tmp_path: Path,
) -> None:
    """The writer commits exactly a row group's worth of spans, splitting the request
    that crosses the boundary; the journal position then names the last whole request,
    and the next open loads the rest of the cut one without storing its first half
    twice."""
    db = tmp_path / "split.duckdb"
    script = _SPLITTING_WRITER.format(
        root=str(ROOT), tests=str(ROOT / "tests" / "collector"), db=str(db)
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "committed" in done.stdout, done.stderr
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM spans").fetchall()[0][0] == 250
    con.close()
    with DuckDBStore(db, read_only=True) as store:
        rows = store._db.cursor().execute("SELECT trace_id || span_id FROM spans").fetchall()
    keys = [row[0] for row in rows]
    assert len(keys) == 300 and len(set(keys)) == 300


def test_transactions_hold_exactly_a_row_group_of_spans(tmp_path: Path) -> None:
    with DuckDBStore(tmp_path / "x.duckdb", rows_per_commit=250, max_commit_delay=3600) as s:
        for n in range(6):
            s.write(make_request(spans=100, first=n * 1000 + 1, attrs=2))
        assert wait_until(lambda: s._loaded_seq >= 5)  # 500 spans: two commits of 250
        con = s._db.cursor()
        committed = con.execute("SELECT count(*) FROM spans").fetchall()[0][0]
        con.close()
        assert committed == 500
        assert s.stats().spans == 600  # the read commits the last 100


_APPENDING_OWNER = """
import sys
sys.path[:0] = [{root!r}, {tests!r}]
from spanstore.duckdb_store import DuckDBStore
from spanstore.journal import journal_dir
from test_collector_support import make_request
store = DuckDBStore({db!r}, rows_per_commit=10**9, max_commit_delay=3600)
assert store.write(make_request(spans=10, first=1, attrs=2)).accepted == 10
segment = sorted(journal_dir({db!r}).glob("*.seg"))[-1]
with open(segment, "ab") as tail:
    tail.write(b"SQTJ half a header")  # the owner is in the middle of an append
print(segment, flush=True)
sys.stdin.readline()  # until the test has looked
"""


def test_a_read_only_open_leaves_the_journal_of_a_running_server_alone(tmp_path: Path) -> None:
    """A read-only open looks for a journal left behind by a killed server. With the
    server alive, the end of its journal may be a record being appended: cutting it off
    as torn (which only the owner may do) would corrupt a record about to be acked."""
    from spanstore.base import StoreError
    from spanstore.journal import has_segments

    db = tmp_path / "s.duckdb"
    script = _APPENDING_OWNER.format(
        root=str(ROOT), tests=str(ROOT / "tests" / "collector"), db=str(db)
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert owner.stdout is not None and owner.stdin is not None
        segment = Path(owner.stdout.readline().strip())
        before = segment.read_bytes()
        assert before.endswith(b"half a header") and has_segments(journal_dir(db))
        with contextlib.suppress(StoreError):  # the owner holds the file
            DuckDBStore(db, read_only=True).close()
        assert segment.read_bytes() == before
    finally:
        owner.kill()
        owner.wait(timeout=30)


def test_records_after_any_position_across_segments(tmp_path: Path) -> None:
    """``records(after)`` skips the segments wholly at or below ``after`` without reading
    them; what it yields must still be exactly the records above it."""
    journal = Journal(tmp_path / "j", segment_bytes=200)
    for n in range(1, 41):
        journal.append(f"record {n}".encode() * 3)
    journal.sync(40)
    journal.close()
    reopened = Journal(tmp_path / "j")
    assert len(list((tmp_path / "j").glob("*.seg"))) > 5
    for after in range(0, 42):
        assert [s for s, _ in reopened.records(after)] == list(range(after + 1, 41))


def test_a_newest_segment_with_only_a_torn_record_numbers_on_from_the_one_before(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path / "j", segment_bytes=100)
    for _ in range(5):
        journal.append(b"x" * 60)
    journal.sync(5)
    journal.close()
    newest = sorted((tmp_path / "j").glob("*.seg"))[-1]
    torn = newest.with_name(f"{6:020d}.seg")
    assert torn.name > newest.name
    torn.write_bytes(b"SQTJ")  # a record of seq 6 whose header was never finished
    reopened = Journal(tmp_path / "j")
    assert reopened.last_seq == 5 and torn.stat().st_size == 0
    assert reopened.append(b"after") == 6
    reopened.sync(6)
    assert [s for s, _ in reopened.records()] == [1, 2, 3, 4, 5, 6]
    reopened.close()

"""When the newest span ended (``last_unix_nano``), kept by the writing store as batches
are acknowledged (spanstore/newest.py) instead of a scan of every span per report: equal
to the scan after writes, committed or not; unknown after a deletion and learned again
from one scan, with the batches acknowledged meanwhile; never learned from a scan that a
deletion may have run under."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa
import pytest

from spanstore.duckdb_store import DuckDBStore
from spanstore.model import HOUR_NS
from spanstore.newest import NewestSpanEnd, newest_end
from spanstore.reader import StoreReader
from spanstore.retention import RetentionPolicy
from spanstore.rows import request_from_spans
from tests.analyzer.test_failures_kept_counts import _trace
from tests.conftest import wait_until


def test_a_batchs_newest_end_is_its_latest_start_plus_duration() -> None:
    spans = pa.table(
        {"start_unix_nano": [10, 50, 30], "duration_ns": [100, 5, 200]},
        schema=pa.schema([("start_unix_nano", pa.int64()), ("duration_ns", pa.int64())]),
    )
    assert newest_end(spans) == 230
    assert newest_end(spans.slice(0, 0)) is None
    with pytest.raises(pa.ArrowInvalid):  # past int64: the store scans instead
        newest_end(pa.table({"start_unix_nano": [2**63 - 1], "duration_ns": [1]}))


def test_forgotten_then_learned_with_what_came_meanwhile() -> None:
    newest = NewestSpanEnd()
    known, _, token = newest.known()
    assert not known  # nothing scanned yet
    newest.acknowledged(500)  # after the token: the scan may miss it
    newest.learned(400, token)
    assert newest.known()[:2] == (True, 500)
    newest.acknowledged(450)
    newest.acknowledged(None)  # a batch of no spans
    assert newest.known()[:2] == (True, 500)
    newest.acknowledged(900)
    assert newest.known()[:2] == (True, 900)
    newest.forget()  # a deletion
    known, _, token = newest.known()
    assert not known
    newest.acknowledged(700)
    newest.learned(None, token)  # every stored span deleted; one batch since
    assert newest.known()[:2] == (True, 700)


def test_a_scan_a_deletion_ran_under_teaches_nothing() -> None:
    newest = NewestSpanEnd()
    _, _, token = newest.known()
    newest.forget()  # retention deleted while the scan ran
    newest.learned(900, token)
    assert not newest.known()[0]


def test_the_store_answers_as_its_scan_does_and_scans_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scans = []
    scan = StoreReader.last_unix_nano

    def counted(reader: StoreReader) -> int | None:
        scans.append(1)
        return scan(reader)

    monkeypatch.setattr(StoreReader, "last_unix_nano", counted)
    now = time.time_ns()
    store = DuckDBStore(tmp_path / "s.duckdb", max_commit_delay=0.2)
    try:
        assert store.last_unix_nano() is None and len(scans) == 1  # empty: scanned
        first = _trace(1, now - HOUR_NS, True)
        store.write(request_from_spans(first))  # acknowledged, perhaps not committed
        assert store.last_unix_nano() == now - HOUR_NS + 5_000_000 == scan(store)
        store.flush()
        store.write(request_from_spans(_trace(2, now - 2 * HOUR_NS, False)))  # older
        store.write(request_from_spans(_trace(3, now - 10 * 60 * 10**9, False)))
        assert store.last_unix_nano() == now - 10 * 60 * 10**9 + 5_000_000 == scan(store)
        assert len(scans) == 1  # only the first answer scanned (the checks call it directly)
    finally:
        store.close()


def test_after_retention_deletes_the_store_scans_again(tmp_path: Path) -> None:
    now = time.time_ns()
    path = tmp_path / "s.duckdb"
    store = DuckDBStore(path, max_commit_delay=0.2)
    try:
        store.write(request_from_spans(_trace(1, now - 3 * HOUR_NS, True)))
        store.flush()
    finally:
        store.close()
    policy = RetentionPolicy(max_age_seconds=2 * 3600, interval_seconds=0.2)
    store = DuckDBStore(path, max_commit_delay=0.2, retention=policy)
    try:
        assert store.last_unix_nano() == now - 3 * HOUR_NS + 5_000_000  # known from here
        assert wait_until(lambda: store.ingest_stats()["retention"]["deleted_spans"] >= 2, 30)
        assert store.last_unix_nano() is None  # every span deleted: not the kept value
        store.write(request_from_spans(_trace(2, now - 60 * 10**9, False)))
        assert store.last_unix_nano() == now - 60 * 10**9 + 5_000_000
    finally:
        store.close()

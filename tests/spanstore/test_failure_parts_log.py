"""The writer's per-commit failure counts (spanstore/failure_parts_log.py): one chain of
adjacent row-id ranges from where a watching report's counts end; a reader gets the
entries from its own row id on, or None; the oldest go first past the bound; nothing is
counted once nobody watches, and a reset (a deletion) drops the chain; entries no
reader's kept counts need go."""

from __future__ import annotations

import time

import polars as pl

from spanstore.failure_parts_log import FailurePartsLog


def rows(n: int, tag: str = "t") -> pl.DataFrame:
    return pl.DataFrame({"trace_id": [f"{tag}{i}" for i in range(n)]})


def test_nothing_is_counted_until_a_report_watches() -> None:
    log = FailurePartsLog()
    assert log.next_since() is None and log.since(0) is None
    log.append(0, 10, rows(3))  # no chain: ignored
    assert len(log) == 0 and log.since(0) is None
    log.watch(10)
    assert log.next_since() == 10
    assert log.since(10) == (10, [])  # nothing committed since


def test_a_reader_gets_the_entries_from_its_own_row_id_on() -> None:
    log = FailurePartsLog()
    log.watch(100)
    a, b, c = rows(2, "a"), rows(3, "b"), rows(1, "c")
    log.append(100, 120, a)
    log.append(120, 125, b)
    log.append(125, 125, rows(0))  # a commit of no spans: no entry
    log.append(125, 140, c)
    assert log.next_since() == 140 and len(log) == 6
    found = log.since(120)
    assert found is not None and found[0] == 140 and found[1] == [b, c]
    assert log.since(100) == (140, [a, b, c])
    assert log.since(121) is None  # inside an entry
    assert log.since(99) is None and log.since(141) is None  # outside the chain
    log.append(130, 150, rows(1))  # not where the chain ends: ignored
    assert log.next_since() == 140


def test_the_oldest_entries_go_past_the_bound() -> None:
    log = FailurePartsLog(max_rows=5)
    log.watch(0)
    log.append(0, 10, rows(3))
    log.append(10, 20, rows(2))
    assert log.since(0) is not None
    log.append(20, 30, rows(2))  # 7 rows: the first entry goes
    assert len(log) == 4
    assert log.since(0) is None
    found = log.since(10)
    assert found is not None and found[0] == 30 and len(found[1]) == 2


def test_the_entries_no_reader_needs_go() -> None:
    """A watcher says where the oldest kept counts end: the entries that end at or before
    it go, an entry it falls inside stays, and readers from there on are served."""
    log = FailurePartsLog()
    log.watch(0)
    a, b, c = rows(3, "a"), rows(2, "b"), rows(1, "c")
    log.append(0, 10, a)
    log.append(10, 20, b)
    log.append(20, 30, c)
    log.watch(30, needed_from=15)  # inside b: a goes, b stays
    assert len(log) == 3 and log.since(0) is None
    assert log.since(10) == (30, [b, c])
    log.watch(30, needed_from=20)
    assert len(log) == 1 and log.since(20) == (30, [c]) and log.since(10) is None
    log.watch(30, needed_from=30)
    assert len(log) == 0 and log.since(30) == (30, []) and log.since(20) is None
    log.append(30, 40, a)
    assert log.since(30) == (40, [a])


def test_the_chain_stops_when_nobody_watches_and_a_reset_drops_it() -> None:
    log = FailurePartsLog(watch_s=0.05)
    log.watch(0)
    log.append(0, 10, rows(3))
    time.sleep(0.1)
    assert log.next_since() is None  # the watch ran out: the writer stops counting
    assert log.since(0) is None and len(log) == 0
    log.watch(10)
    log.append(10, 20, rows(1))
    log.reset()
    assert log.since(10) is None and log.next_since() is None

"""SLO events kept per day (``LocalSource(keep_slo_events=True)``, the server's source):
the same report as computing everything each time, and a day is read again exactly when
the store says spans starting in it (or within its margins) changed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import polars as pl
import pytest
from test_slo_spans import AT, DAY, MINUTE, MS, SPEC, _request, _scenario, _span, _trace

from analyzer.source import SLO_PIECE_NS, LocalSource
from spanstore import SpanReader
from spanstore.changes import HOUR_NS, MAX_HOURS, ChangeLog
from spanstore.duckdb_store import DuckDBStore
from tests.conftest import SAMPLES

#: Shift the scenario so that trace 2's event starts 0.5 ms before midnight and the
#: same SLO's span nested in it 0.5 ms after: the nesting crosses two kept days.
MIDNIGHT = AT - AT % SLO_PIECE_NS + SLO_PIECE_NS
SHIFT = (MIDNIGHT - MS // 2) - (AT - 20 * MINUTE)


class CountingReader:
    """The real store, counting the ``slo_spans`` reads that LocalSource makes."""

    def __init__(self, store: DuckDBStore) -> None:
        self.store = store
        self.reads: list[tuple[int, int]] = []
        #: What each read asked for: (services, operations).
        self.asked: list[tuple[list[str], list[str]]] = []

    def slo_spans(
        self, start: int, end: int, services: Sequence[str], operations: Sequence[str]
    ) -> pl.DataFrame:
        self.reads.append((start, end))
        self.asked.append((list(services), list(operations)))
        return self.store.slo_spans(start, end, services, operations)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def _shifted(spans: list[dict[str, Any]], by: int) -> list[dict[str, Any]]:
    return [{**s, "start": s["start"] + by} for s in spans]


@pytest.fixture
def store(tmp_path: Path) -> DuckDBStore:
    return DuckDBStore(tmp_path / "kept.duckdb")


@pytest.mark.parametrize("shift", [0, SHIFT], ids=["mid-day", "across-midnight"])
def test_kept_events_give_the_same_report(store: DuckDBStore, shift: int) -> None:
    with store:
        store.write(_request(_shifted(_scenario(), shift)))
        kept = LocalSource(store, keep_slo_events=True)
        fresh = LocalSource(store)
        for at in (AT + shift, AT + shift - 30 * MINUTE, AT + shift + 2 * DAY):
            expected = fresh.slo(SPEC, at, "spec")
            assert kept.slo(SPEC, at, "spec") == expected
            assert kept.slo(SPEC, at, "spec") == expected  # from what was kept
    by_name = {s["name"]: s for s in expected["slos"]}
    assert by_name["avail-7d"]["total"] == 10  # trace 2's nested span is not a second event


def test_a_day_is_read_again_only_after_it_changed(store: DuckDBStore) -> None:
    with store:
        store.write(_request(_scenario()))
        reader = CountingReader(store)
        kept = LocalSource(cast(SpanReader, reader), keep_slo_events=True)
        first = kept.slo(SPEC, AT, "spec")
        # One read for the 8 days (the 7-day window and the day it starts in), an hour
        # of candidates before the first.
        first_day = (AT - 7 * DAY) - (AT - 7 * DAY) % SLO_PIECE_NS
        assert reader.reads == [(first_day - HOUR_NS, first_day + 8 * SLO_PIECE_NS)]
        days = len(reader.reads)
        assert kept.slo(SPEC, AT, "spec") == first
        assert len(reader.reads) == days  # nothing read again

        # A failed checkout two days back, in the middle of its day.
        two_days_back = AT - 2 * DAY - AT % SLO_PIECE_NS + SLO_PIECE_NS // 2
        failed = {"service": "frontend", "name": "POST /checkout", "error": True}
        store.write(
            _request(
                [{"trace": _trace(12), "span": _span(12, 1), "start": two_days_back, **failed}]
            )
        )
        after = kept.slo(SPEC, AT, "spec")
        assert after == LocalSource(store).slo(SPEC, AT, "spec")
        assert reader.reads[days:] == [
            (two_days_back - SLO_PIECE_NS // 2 - HOUR_NS, two_days_back + SLO_PIECE_NS // 2)
        ]
        week = {s["name"]: s for s in after["slos"]}["avail-7d"]
        before = {s["name"]: s for s in first["slos"]}["avail-7d"]
        assert (week["total"], week["bad"]) == (before["total"] + 1, before["bad"] + 1)

        # Two days apart changed at once: each is read alone, not the days between.
        read = len(reader.reads)
        middles = [two_days_back - 3 * DAY, two_days_back - DAY]
        store.write(
            _request(
                [
                    {"trace": _trace(13 + i), "span": _span(13 + i, 1), "start": at, **failed}
                    for i, at in enumerate(middles)
                ]
            )
        )
        assert kept.slo(SPEC, AT, "spec") == LocalSource(store).slo(SPEC, AT, "spec")
        half = SLO_PIECE_NS // 2
        assert reader.reads[read:] == [(m - half - HOUR_NS, m + half) for m in middles]


def _spec(*slos: dict[str, Any]) -> str:
    return json.dumps({"slos": list(slos)})


AVAILABILITY = {"name": "checkout", "service": "frontend", "operation": "POST /checkout",
                "sli": "availability", "objective": 99, "window": "1d"}  # fmt: skip
LATENCY = {"name": "checkout-fast", "service": "frontend", "operation": "POST /checkout",
           "sli": "latency", "threshold_ms": 300, "objective": 95, "window": "1d"}  # fmt: skip


def test_days_are_kept_per_slo(store: DuckDBStore) -> None:
    """Editing one SLO of a spec reads that SLO's events alone; a name, objective or
    window change within the days already kept reads nothing; a new SLO reads only its
    own service and operation."""
    with store:
        store.write(_request(_scenario()))
        reader = CountingReader(store)
        kept = LocalSource(cast(SpanReader, reader), keep_slo_events=True)
        fresh = LocalSource(store)

        def report(spec: str) -> dict[str, Any]:
            got = kept.slo(spec, AT, "spec")
            assert got == fresh.slo(spec, AT, "spec")
            return got

        report(_spec(AVAILABILITY, LATENCY))
        assert len(reader.reads) == 1
        # The same events under other names, objectives and a shorter window: kept.
        renamed = {**AVAILABILITY, "name": "renamed", "objective": 99.9, "window": "6h"}
        report(_spec(renamed, {**LATENCY, "objective": 90}))
        assert len(reader.reads) == 1
        # A new threshold: only the latency SLO's events are read again.
        faster = {**LATENCY, "threshold_ms": 50}
        edited = report(_spec(AVAILABILITY, faster))
        assert len(reader.reads) == 2
        assert reader.asked[-1] == (["frontend"], ["POST /checkout"])
        by_name = {s["name"]: s for s in edited["slos"]}
        assert by_name["checkout-fast"]["bad"] > 0  # the new threshold was applied
        # A new SLO of another service: one read, for that service only.
        payments = {"name": "pay", "service": "payment", "operation": "POST /pay",
                    "sli": "availability", "objective": 99, "window": "1d"}  # fmt: skip
        report(_spec(AVAILABILITY, faster, payments))
        assert len(reader.reads) == 3
        assert reader.asked[-1] == (["payment"], ["POST /pay"])


def test_the_cli_source_keeps_nothing(sample_db: Path) -> None:
    """A one-shot source (the CLI's) reads the whole range once, as it always did."""
    with DuckDBStore(sample_db, read_only=True) as real:
        reader = CountingReader(real)
        report = LocalSource(cast(SpanReader, reader)).slo(
            (SAMPLES / "slo.yaml").read_text(), None, "slo.yaml"
        )
        assert len(reader.reads) == 1
        kept = LocalSource(real, keep_slo_events=True)
        assert kept.slo((SAMPLES / "slo.yaml").read_text(), None, "slo.yaml") == report


def test_store_data_versions_follow_the_hours_written(tmp_path: Path) -> None:
    path = tmp_path / "v.duckdb"
    with DuckDBStore(path) as store:
        hour = AT - AT % HOUR_NS
        ranges = [(hour, hour + HOUR_NS), (hour - DAY, hour + DAY)]
        ranges.append((hour - 5 * HOUR_NS, hour - 4 * HOUR_NS))
        before = store.data_versions(ranges)
        assert before is not None
        span = {"trace": _trace(1), "span": _span(1, 1), "start": hour + 5 * MINUTE}
        store.write(_request([{"service": "s", "name": "n", **span}]))
        after = store.data_versions(ranges)
        assert after is not None
        assert after[0] != before[0]
        assert after[1] != before[1]
        assert after[2] == before[2]  # another hour
    with DuckDBStore(path, read_only=True) as read_only:
        assert read_only.data_versions(ranges) == [0, 0, 0]  # nothing can write it


def test_change_log() -> None:
    log = ChangeLog()
    assert log.version(0, 10 * HOUR_NS) == 0
    log.mark({2, 3})
    assert log.version(2 * HOUR_NS, 3 * HOUR_NS) == 1
    assert log.version(0, 2 * HOUR_NS) == 0  # the end is exclusive
    assert log.version(-(10**18), 10**18) == 1  # a wide range scans what is known
    log.mark({-1})  # spans before 1970 have hours too
    assert log.version(-HOUR_NS, 0) == 2
    assert log.version(3 * HOUR_NS, 4 * HOUR_NS) == 1
    log.mark_all()
    assert log.version(50 * HOUR_NS, 51 * HOUR_NS) == 3
    log.mark(range(MAX_HOURS + 1))  # too many hours to remember: everything changed
    assert log.version(10**15 * HOUR_NS, 10**15 * HOUR_NS + 1) == 4


def test_kept_days_are_bounded_by_memory() -> None:
    from analyzer.slo import EVENT_SCHEMA
    from analyzer.source import _SloPieces

    def day(rows: int) -> pl.DataFrame:
        return pl.DataFrame(
            {"start": range(rows), "bad": [False] * rows, "partial": [False] * rows,
             "trace_id": [None] * rows},
            schema=EVENT_SCHEMA,
        )  # fmt: skip

    one = int(day(1000).estimated_size())
    pieces = _SloPieces(max_bytes=3 * one)
    for n in range(3):
        pieces.put(n, 7, day(1000))
    assert pieces.get(0, 7) is not None  # 0 is now the most recently used
    assert pieces.get(1, 8) is None  # another version of the store: not reused
    pieces.put(3, 7, day(1000))  # over the bound: the least recently used (1) goes
    assert [n for n in range(4) if pieces.get(n, 7) is not None] == [0, 2, 3]
    pieces.put(4, 7, day(10_000))  # larger than the bound alone: kept, the rest go
    assert [n for n in range(5) if pieces.get(n, 7) is not None] == [4]

"""Kept trace shapes (spanstore/trace_shapes.py, ``trace_shapes``): the writer gives each
trace of a settled hour its fold row while idle and keeps the rows reads computed; a read
uses a kept row only while it matches the trace's spans, so the answer is always the one
computed from the spans."""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spanstore import trace_shapes
from spanstore.duckdb_store import SCHEMA_VERSION, DuckDBStore
from spanstore.model import Span
from spanstore.retention import RetentionPolicy
from spanstore.rows import request_from_spans
from tests.conftest import wait_until

MS = 1_000_000
HOUR = 3_600_000_000_000
#: 2026-09: long settled (the backfill takes hours that ended 10 minutes ago or more).
#: The stores commit within 0.2 s (``max_commit_delay``): the backfill reads committed spans.
BASE = 1_790_000_000_000_000_000 - 1_790_000_000_000_000_000 % HOUR
TRACES = 60
SERVICES = ("frontend", "checkout", "payment", "stock")


def trace_spans(number: int, rng: random.Random) -> list[Span]:
    """A trace of 1-9 spans in a random tree, starting in hour ``number % 3`` of BASE:
    random services, names and errors; some with two spans starting at once (no
    fingerprint: such traces are never shared)."""
    trace_id = f"{rng.getrandbits(128):032x}"
    start = BASE + (number % 3) * HOUR + number * 5_000 * MS
    spans: list[Span] = []
    for index in range(rng.randint(1, 9)):
        parent = rng.choice(spans) if spans else None
        begin = (parent.start_unix_nano + rng.randint(0, 3) * MS) if parent else start
        begin += index * MS * rng.randint(0, 1)
        service = rng.choice(SERVICES)
        spans.append(
            Span(
                trace_id=trace_id,
                span_id=f"{rng.getrandbits(64):016x}",
                parent_span_id=parent.span_id if parent else None,
                service_name=service,
                name=f"op {rng.randint(0, 2)}",
                kind=rng.choice(("SERVER", "CLIENT", "INTERNAL")),
                start_unix_nano=begin,
                end_unix_nano=begin + rng.randint(1, 50) * MS,
                status_code="ERROR" if rng.random() < 0.15 else "UNSET",
                attributes={"order.id": f"ORD-{number}"},
                resource_attributes={"service.name": service},
            )
        )
    return spans


@pytest.fixture(scope="module")
def traces() -> list[list[Span]]:
    rng = random.Random(16)
    return [trace_spans(n, rng) for n in range(TRACES)]


def trace_ids(traces: list[list[Span]]) -> list[str]:
    return sorted(t[0].trace_id for t in traces)


def write(store: DuckDBStore, traces: list[list[Span]]) -> None:
    store.write(request_from_spans([s for t in traces for s in t]))


def shapes(store: DuckDBStore, ids: list[str]) -> pl.DataFrame:
    found = store.flow_trace_shapes(ids)
    assert found is not None
    return found


def computed(store: DuckDBStore, ids: list[str]) -> pl.DataFrame:
    """The rows as computed from the spans alone (no kept row is read)."""
    store._has_trace_shapes = False  # the path of a version-3 file opened read-only
    try:
        return shapes(store, ids)
    finally:
        store._has_trace_shapes = True


def raw_rows(store: DuckDBStore, ids: list[str]) -> list[dict[str, Any]]:
    """flow_trace_shapes' own rows, with ``kept`` and ``start_check``."""
    table = store._table(
        "flow_trace_shapes",
        {
            "trace_ids": [bytes.fromhex(t) for t in ids],
            "lo": -(1 << 62),
            "hi": 1 << 62,
            "with_spans": False,
            "failing_spans": False,
            "whole_spans": 0,
        },
    )
    return table.drop_columns(["span_rows"]).to_pylist()


def kept_count(path: Path) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return int(con.execute("SELECT count(*) FROM trace_shapes").fetchall()[0][0])
    finally:
        con.close()


def wait_for_the_three_hours(store: DuckDBStore) -> None:
    """Until the idle writer has kept the traces of the three hours they start in."""
    assert wait_until(lambda: store.ingest_stats()["trace_shapes"]["hours_done"] == 3, 30)


def test_the_idle_writer_keeps_every_settled_trace_and_reads_use_the_rows(
    tmp_path: Path, traces: list[list[Span]]
) -> None:
    ids = trace_ids(traces)
    with DuckDBStore(tmp_path / "s.duckdb", max_commit_delay=0.2) as store:
        write(store, traces)
        before = raw_rows(store, ids)
        assert not any(row["kept"] for row in before)  # nothing kept yet: all computed
        wait_for_the_three_hours(store)
        stats = store.ingest_stats()["trace_shapes"]
        assert stats["hours_done"] == 3 and stats["rows_backfilled"] == TRACES, stats
        after = raw_rows(store, ids)
        assert all(row["kept"] for row in after)
        strip = [{k: v for k, v in row.items() if k != "kept"} for row in before]
        assert [{k: v for k, v in row.items() if k != "kept"} for row in after] == strip
        assert shapes(store, ids).equals(computed(store, ids))
        spans = sum(len(t) for t in traces)
        assert sum(row["spans"] for row in after) == spans


def test_a_busy_hour_is_kept_in_several_short_steps(
    tmp_path: Path, traces: list[list[Span]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer commits nothing during a backfill statement, so an hour with more than
    SPANS_PER_STEP spans is split into parts by trace id, one statement each: every trace
    gets its row once, the same row as in one step, and the hour is done after its last."""
    monkeypatch.setattr(trace_shapes, "SPANS_PER_STEP", 25)
    ids = trace_ids(traces)
    spans_per_hour = [sum(len(t) for n, t in enumerate(traces) if n % 3 == h) for h in range(3)]
    parts = sum(-(-spans // 25) for spans in spans_per_hour)
    assert parts >= 6  # the traces fixture gives each hour several parts
    with DuckDBStore(tmp_path / "steps.duckdb", max_commit_delay=0.2) as store:
        write(store, traces)
        before = raw_rows(store, ids)
        wait_for_the_three_hours(store)
        stats = store.ingest_stats()["trace_shapes"]
        assert stats["steps"] == parts and stats["rows_backfilled"] == TRACES, stats
        after = raw_rows(store, ids)
        assert all(row["kept"] for row in after)
        strip = [{k: v for k, v in row.items() if k != "kept"} for row in before]
        assert [{k: v for k, v in row.items() if k != "kept"} for row in after] == strip
    assert kept_count(tmp_path / "steps.duckdb") == TRACES


def test_a_trace_that_gained_a_span_is_computed_again_and_its_new_row_kept(
    tmp_path: Path, traces: list[list[Span]]
) -> None:
    ids = trace_ids(traces)
    with DuckDBStore(tmp_path / "s.duckdb", max_commit_delay=0.2) as store:
        write(store, traces)
        wait_for_the_three_hours(store)
        late = traces[5][0]
        extra = Span(
            trace_id=late.trace_id,
            span_id="ab" * 8,
            parent_span_id=late.span_id,
            service_name="late",
            name="late retry",
            kind="CLIENT",
            start_unix_nano=late.start_unix_nano + 7 * MS,
            end_unix_nano=late.start_unix_nano + 9 * MS,
            status_code="ERROR",
            attributes={},
            resource_attributes={"service.name": "late"},
        )
        store.write(request_from_spans([extra]))
        rows = {row["trace_id"]: row for row in raw_rows(store, ids)}
        assert not rows[late.trace_id]["kept"]  # its kept row no longer matches
        assert rows[late.trace_id]["spans"] == len(traces[5]) + 1
        assert rows[late.trace_id]["outcome"] != "ok"
        assert sum(not row["kept"] for row in rows.values()) == 1
        assert shapes(store, ids).equals(computed(store, ids))
        # The read offered its computed row; the writer keeps it at its next pause.
        assert wait_until(
            lambda: store.ingest_stats()["trace_shapes"]["rows_kept_from_reads"] == 1, 30
        ), store.ingest_stats()["trace_shapes"]
        assert all(row["kept"] for row in raw_rows(store, ids))
    assert kept_count(tmp_path / "s.duckdb") == TRACES + 1  # the stale row stays, unused


@pytest.fixture(scope="module")
def kept_store(
    tmp_path_factory: pytest.TempPathFactory, traces: list[list[Span]]
) -> Iterator[DuckDBStore]:
    """A store of the traces whose writer keeps nothing by itself (no idle backfill):
    the property test below writes the kept rows."""
    path = tmp_path_factory.mktemp("kept") / "k.duckdb"
    with DuckDBStore(path) as store:
        store._trace_shapes = None
        write(store, traces)
        yield store


#: How a kept row may be wrong: the count or the start check of another set of spans.
MUTATIONS = ("right", "fewer_spans", "more_spans", "other_starts")


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_kept_rows_are_used_only_when_they_match(
    kept_store: DuckDBStore, traces: list[list[Span]], data: st.DataObject
) -> None:
    """Whatever rows are kept (right ones, and rows of an older or newer set of the
    trace's spans, with a fingerprint that would be wrong), a read answers exactly as if
    none were: a row is used only when its count and start check match the spans."""
    ids = trace_ids(traces)
    truth = computed(kept_store, ids)
    asked = data.draw(st.lists(st.sampled_from(ids), min_size=1, max_size=15, unique=True))
    plan = {t: data.draw(st.sampled_from(MUTATIONS), label=t[:6]) for t in asked}
    rows = {row["trace_id"]: row for row in raw_rows(kept_store, ids)}
    con = kept_store._db.cursor()
    try:
        con.execute("DELETE FROM trace_shapes")
        for trace_id, how in plan.items():
            row = dict(rows[trace_id])
            if how != "right":
                row["fingerprint"] = "wrong"
                row["outcome"] = "failed"
                if how == "fewer_spans":
                    row["spans"] -= 1
                elif how == "more_spans":
                    row["spans"] += 1
                else:
                    row["start_check"] += 1
            con.execute(
                "INSERT INTO trace_shapes VALUES (unhex(?), ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    trace_id,
                    row["spans"],
                    row["start_check"],
                    row["start_unix_nano"],
                    row["duration_ns"],
                    row["outcome"],
                    row["fingerprint"],
                    row["durations"],
                    row["errors"],
                ],
            )
        found = {row["trace_id"]: row["kept"] for row in raw_rows(kept_store, ids)}
        assert found == {t: plan.get(t) == "right" for t in ids}
        assert shapes(kept_store, ids).equals(truth)
        some = sorted(asked)
        assert shapes(kept_store, some).equals(truth.filter(pl.col("trace_id").is_in(some)))
    finally:
        con.execute("DELETE FROM trace_shapes")
        con.close()


def test_a_version_3_file_is_read_as_it_is_and_migrated_by_a_writer(
    tmp_path: Path, traces: list[list[Span]]
) -> None:
    path = tmp_path / "v3.duckdb"
    ids = trace_ids(traces)
    with DuckDBStore(path) as store:
        store._trace_shapes = None  # nothing kept: as version 3 wrote it
        write(store, traces)
        want = shapes(store, ids)
    con = duckdb.connect(str(path))
    con.execute("DROP TABLE trace_shapes")
    con.execute("DROP TABLE trace_shape_hours")
    con.execute("UPDATE seqtrace_meta SET value = '3' WHERE key = 'schema_version'")
    con.close()

    with DuckDBStore(path, read_only=True) as store:  # no table: every shape computed
        assert shapes(store, ids).equals(want)
    con = duckdb.connect(str(path), read_only=True)
    tables = con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    con.close()
    assert ("trace_shapes",) not in tables

    with DuckDBStore(path) as store:
        assert shapes(store, ids).equals(want)
        wait_for_the_three_hours(store)
        assert all(row["kept"] for row in raw_rows(store, ids))
        assert shapes(store, ids).equals(want)
    con = duckdb.connect(str(path), read_only=True)
    version = con.execute("SELECT value FROM seqtrace_meta WHERE key = 'schema_version'")
    assert version.fetchall()[0][0] == str(SCHEMA_VERSION) == "4"
    con.close()


def test_keep_trace_shapes_false_keeps_none(tmp_path: Path, traces: list[list[Span]]) -> None:
    """`limits.keep_trace_shapes: false`: the writer neither backfills nor keeps what reads
    computed; reads compute every shape."""
    ids = trace_ids(traces)
    path = tmp_path / "off.duckdb"
    with DuckDBStore(path, max_commit_delay=0.2, keep_trace_shapes=False) as store:
        write(store, traces)
        assert store.ingest_stats()["trace_shapes"] is None
        assert not any(row["kept"] for row in raw_rows(store, ids))
        assert wait_until(lambda: store.ingest_stats()["queue"]["spans"] == 0, 10)
        time.sleep(1.5)  # several idle turns of the writer
        assert shapes(store, ids).equals(computed(store, ids))
    assert kept_count(path) == 0


def test_an_hour_is_kept_only_once_it_has_settled(tmp_path: Path, traces: list[list[Span]]) -> None:
    """Spans of the current hour are left alone (their traces may still grow); once the
    hour ended SETTLE_NS ago the writer keeps its traces, found from its own commits
    (the store is not scanned again)."""
    now = time.time_ns()
    shift = now - traces[0][0].start_unix_nano - 60 * 1_000_000_000
    recent = [
        [
            dataclasses.replace(
                s, start_unix_nano=s.start_unix_nano + shift, end_unix_nano=s.end_unix_nano + shift
            )
            for s in t
        ]
        for t in traces[:3]  # hours 0, 1 and 2 of BASE: moved to a minute ago and later
    ]
    with DuckDBStore(tmp_path / "now.duckdb", max_commit_delay=0.2) as store:
        keeper = store._trace_shapes
        assert keeper is not None
        time.sleep(1.0)  # the writer idles first: it reads the (empty) store's hours once
        write(store, recent)
        assert wait_until(lambda: store.ingest_stats()["trace_shapes"]["hours_settling"] >= 1, 10)
        time.sleep(1.0)
        assert store.ingest_stats()["trace_shapes"]["hours_done"] == 0
        keeper._clock = lambda: time.time_ns() + 4 * HOUR  # four hours later
        assert wait_until(lambda: store.ingest_stats()["trace_shapes"]["hours_settling"] == 0, 10)
        assert wait_until(lambda: store.ingest_stats()["trace_shapes"]["rows_backfilled"] == 3, 10)
        assert all(row["kept"] for row in raw_rows(store, trace_ids(recent)))


def test_an_hour_that_cannot_be_kept_is_noted_once_and_left(
    tmp_path: Path, traces: list[list[Span]]
) -> None:
    """A backfill statement that fails is counted and logged once per hour, not tried at
    every idle turn; reads still answer, computing the shapes."""
    ids = trace_ids(traces)
    with DuckDBStore(tmp_path / "fail.duckdb", max_commit_delay=0.2) as store:
        keeper = store._trace_shapes
        assert keeper is not None
        real = keeper._sql
        keeper._sql = lambda name: (
            "SELECT error('no room for the shapes')"
            " WHERE $start < $end + $margin AND $part < $parts"
            if name == "trace_shapes_of_hour"
            else real(name)
        )
        write(store, traces)
        assert wait_until(lambda: store.ingest_stats()["trace_shapes"]["errors"] == 3, 30)
        time.sleep(1.5)  # more idle turns: nothing is tried again
        stats = store.ingest_stats()["trace_shapes"]
        assert stats["errors"] == 3 and stats["hours_to_do"] == 0, stats
        assert stats["hours_done"] == 0 and "no room for the shapes" in stats["last_error"]
        assert shapes(store, ids).equals(computed(store, ids))
    assert kept_count(tmp_path / "fail.duckdb") == 0


def test_retention_deletes_the_kept_rows_and_hours_of_the_spans_it_deletes(
    tmp_path: Path, traces: list[list[Span]]
) -> None:
    """A kept row outlives no span of its trace's start hour: retention cuts
    ``trace_shapes`` by the trace's start and ``trace_shape_hours`` by the hour, as it cuts
    the spans; the hour it keeps stays kept and its rows are still used."""
    path = tmp_path / "r.duckdb"
    with DuckDBStore(path, max_commit_delay=0.2) as store:
        write(store, traces)
        wait_for_the_three_hours(store)
    # Half an hour before the third hour: the first two hours' traces go, whole.
    cutoff = BASE + 2 * HOUR - HOUR // 2
    policy = RetentionPolicy(max_age_seconds=(time.time_ns() - cutoff) / 1e9, interval_seconds=0.2)
    with DuckDBStore(path, max_commit_delay=0.2, retention=policy) as store:
        # A round's checkpoint comes after every table's deletions.
        assert wait_until(lambda: store.ingest_stats()["retention"]["checkpoints"] >= 1, 30)
        kept_hours = (
            store._db.cursor()
            .execute("SELECT hour_unix_nano FROM trace_shape_hours ORDER BY 1")
            .fetchall()
        )
        assert kept_hours == [(BASE + 2 * HOUR,)]
        left = [t for n, t in enumerate(traces) if n % 3 == 2]
        ids = trace_ids(left)
        rows = raw_rows(store, ids)
        assert len(rows) == len(left) and all(row["kept"] for row in rows)
        assert shapes(store, ids).equals(computed(store, ids))
    assert kept_count(path) == len(left)

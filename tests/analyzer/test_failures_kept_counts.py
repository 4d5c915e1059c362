"""The failure report's counting pass kept between reports (analyzer.failures_store's
KeptCounts, the server's): brought up to date from the spans committed since (by row id),
those not committed yet and the traces at the range's moved edges, it equals counting the
whole range again, whatever the writes and however the range moves; the report made with
it equals the analysis of the whole frame; it reads only what is new; and a deletion
(retention) starts it over.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import analyzer.failures_store as failures_store
from analyzer.failures import errors_among
from analyzer.failures_store import (
    FOLLOW_STEP_NS,
    KeptCounts,
    KeptRows,
    failing_traces,
    store_failure_report,
)
from analyzer.source import LocalSource
from spanstore.duckdb_store import DuckDBStore
from spanstore.model import HOUR_NS, Span
from spanstore.reader import RowIdRanges
from spanstore.retention import RetentionPolicy
from spanstore.rows import request_from_spans
from tests.analyzer.test_failures_store import T0, old_report, traces
from tests.conftest import wait_until

MINUTE = 60 * 1_000_000_000
#: Each example's spans and ranges stay in a window of their own.
WINDOW = 12 * HOUR_NS
_examples = itertools.count(1)


def as_set(rows: pl.DataFrame) -> set[tuple[Any, ...]]:
    return set(rows.rows())


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBStore]:
    duck = DuckDBStore(tmp_path_factory.mktemp("kept-counts") / "random.duckdb")
    yield duck
    duck.close()


@st.composite
def spread_traces(draw: st.DrawFn, prefix: int, window: int) -> list[Span]:
    """Traces whose spans start on a 5-minute grid from an hour before ``window`` to 2.5
    hours after it, so that a range moving forward passes their roots and the hour
    searched around it gains and loses their spans; roots, orphans and rootless traces,
    errors by status and by HTTP code."""
    spans: list[Span] = []
    for t in range(draw(st.integers(1, 5))):
        trace_id = f"{prefix:016x}{t:04x}{draw(st.integers(0, 2**48 - 1)):012x}"
        base = window + draw(st.integers(-12, 30)) * 5 * MINUTE
        ids: list[str] = []
        for n in range(draw(st.integers(1, 5))):
            span_id = f"{prefix % 2**24:06x}{t:02x}{n:08x}"
            if n == 0 and draw(st.booleans()):
                parent = None
            else:
                parent = draw(st.sampled_from([*ids, "00000000deadbeef"]))
            start = base + draw(st.sampled_from([0, 0, MINUTE, 20 * MINUTE, 70 * MINUTE]))
            status = draw(st.sampled_from(["UNSET", "OK", "ERROR"]))
            http = draw(st.sampled_from([None, 200, 404, 503]))
            spans.append(
                Span(
                    trace_id=trace_id,
                    span_id=span_id,
                    parent_span_id=parent,
                    name="GET /a",
                    kind=draw(st.sampled_from(["SERVER", "CLIENT"])),
                    start_unix_nano=start,
                    end_unix_nano=start + MINUTE // 60,
                    service_name=draw(st.sampled_from(["front", "pay"])),
                    status_code=status,
                    attributes={} if http is None else {"http.response.status_code": http},
                )
            )
            ids.append(span_id)
    return spans


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_kept_counts_equal_counting_again(store: DuckDBStore, data: st.DataObject) -> None:
    """Steps of writes (new traces, and new spans of traces written before) and ranges
    moving forward by up to FOLLOW_STEP_NS at either end (roots leave the range at its
    start, spans leave and enter the searched hour around it, roots enter at its end):
    after each, the kept rows are exactly failure_traces of the range, and the report
    equals the whole frame's analysis."""
    example = next(_examples)
    window = T0 + example * WINDOW
    counted = KeptCounts()
    start, end = window, window + HOUR_NS
    written: list[Span] = []
    for step in range(data.draw(st.integers(2, 6))):
        prefix = example * 16 + step
        if data.draw(st.booleans()):
            spans = data.draw(traces(prefix, window))  # cancellations, exceptions, ...
        else:
            spans = data.draw(spread_traces(prefix, window))
        if written and data.draw(st.booleans()):
            # Late spans of a trace written before (its trace id, new span ids).
            old = data.draw(st.sampled_from(written))
            late = [
                dataclasses.replace(span, trace_id=old.trace_id)
                for span in spans[: data.draw(st.integers(1, len(spans)))]
            ]
            spans = [*late, *spans[len(late) :]]
        if data.draw(st.booleans()):
            store.write(request_from_spans(spans))
            written.extend(spans)
        start += data.draw(st.sampled_from([0, 5 * MINUTE, 10 * MINUTE, FOLLOW_STEP_NS]))
        end = max(end + data.draw(st.sampled_from([0, 5 * MINUTE, FOLLOW_STEP_NS])), start + 1)
        if data.draw(st.booleans()):
            # The background step between reports: the counts follow the writer's.
            store.flush()
            counted.follow_writer(store)
        kept = counted.rows(store, start, end)
        assert kept is not None
        fresh = store.failure_traces(start, end)
        assert fresh is not None
        assert as_set(kept.all()) == as_set(fresh)
        assert kept.all().height == fresh.height  # no row twice
        assert kept.covered == fresh["trace_id"].n_unique()
        some = sorted(set(fresh["trace_id"]))[::3]
        assert as_set(kept.of(some)) == as_set(fresh.filter(pl.col("trace_id").is_in(some)))
        possible = fresh.filter(pl.col("span_id").is_not_null())
        assert as_set(kept.failing) == as_set(failing_traces(errors_among(possible)))
        report = store_failure_report(store, start, end, counted=counted)
        assert report == old_report(store, start, end)


class Recording:
    """A real store whose failure_parts calls and answers are recorded (the rest passes
    through)."""

    def __init__(self, store: DuckDBStore, *, writer_counts: bool = True) -> None:
        self._store = store
        self._writer_counts = writer_counts  # False: as if the writer kept no counts
        self.calls: list[tuple[int, list[bytes] | None]] = []  # (since_rowid, trace_ids)
        self.read: list[set[str]] = []  # the traces each call's rows were about
        self.candidate_calls = 0
        self.frames: list[tuple[list[str], RowIdRanges | None]] = []  # (trace ids, rowids)

    def failure_candidates(
        self, start: int, end: int, service: str | None = None
    ) -> tuple[int, pl.DataFrame]:
        self.candidate_calls += 1
        return self._store.failure_candidates(start, end, service)

    def failure_parts(
        self,
        start: int,
        end: int,
        since_rowid: int = 0,
        trace_ids: Sequence[bytes] | None = None,
        next_rowid: int = 0,
    ) -> tuple[int, pl.DataFrame] | None:
        self.calls.append((since_rowid, None if trace_ids is None else list(trace_ids)))
        answer = self._store.failure_parts(start, end, since_rowid, trace_ids, next_rowid)
        assert answer is not None
        self.read.append(set(answer[1]["trace_id"].to_list()))
        return answer

    def traces_frame(
        self, trace_ids: Sequence[str], start: int, end: int, rowids: RowIdRanges | None = None
    ) -> pl.DataFrame:
        self.frames.append((sorted(trace_ids), rowids))
        return self._store.traces_frame(trace_ids, start, end, rowids)

    def logged_failure_parts(
        self, start: int, end: int, since_rowid: int
    ) -> tuple[int, pl.DataFrame, list[bytes]] | None:
        if not self._writer_counts:
            return None
        return self._store.logged_failure_parts(start, end, since_rowid)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def _trace(trace_no: int, start: int, error: bool) -> list[Span]:
    trace_id = f"{trace_no:032x}"
    root = Span(
        trace_id=trace_id,
        span_id=f"{trace_no:08x}00000001",
        parent_span_id=None,
        name="GET /checkout",
        kind="SERVER",
        start_unix_nano=start,
        end_unix_nano=start + 5_000_000,
        service_name="front",
        status_code="UNSET",
        attributes={},
    )
    child = Span(
        trace_id=trace_id,
        span_id=f"{trace_no:08x}00000002",
        parent_span_id=root.span_id,
        name="charge",
        kind="CLIENT",
        start_unix_nano=start + 1_000_000,
        end_unix_nano=start + 4_000_000,
        service_name="front",
        status_code="ERROR" if error else "UNSET",
        attributes={},
    )
    return [root, child]


def test_a_report_reads_only_the_spans_written_since(tmp_path: Path) -> None:
    """The second report of the same range reads the spans committed since the first
    (by row id) and those not committed yet: the three traces written in between, not
    the fifty before them, and counts all fifty-three. (Here the writer's own counts of
    its commits are hidden: the next test has them.)"""
    store = DuckDBStore(tmp_path / "s.duckdb")
    try:
        spans = [s for n in range(50) for s in _trace(n + 1, T0 + n * MINUTE // 2, n % 5 == 0)]
        store.write(request_from_spans(spans))
        store.flush()
        recording = Recording(store, writer_counts=False)
        counted = KeptCounts()
        start, end = T0, T0 + HOUR_NS
        first = store_failure_report(recording, start, end, counted=counted)  # type: ignore[arg-type]
        assert recording.calls == [(0, None)]  # counted from scratch
        assert len(recording.read[0]) == 50
        assert first["summary"]["traces"] == 50 and first["summary"]["ok"] == 40
        more = [s for n in range(50, 53) for s in _trace(n + 1, T0 + n * MINUTE // 2, True)]
        store.write(request_from_spans(more[:2]))
        store.flush()
        store.write(request_from_spans(more[2:]))  # not committed yet, perhaps
        second = store_failure_report(recording, start, end, counted=counted)  # type: ignore[arg-type]
        assert recording.calls[1] == (100, None)  # the 100 spans counted first: row ids 0-99
        assert recording.read[1] == {f"{n + 1:032x}" for n in range(50, 53)}
        assert second["summary"]["traces"] == 53 and second["summary"]["ok"] == 40
        assert second == old_report(store, start, end)
        # A jump beyond FOLLOW_STEP_NS counts from scratch again.
        later = start + FOLLOW_STEP_NS + 1
        store_failure_report(recording, later, end + HOUR_NS, counted=counted)  # type: ignore[arg-type]
        assert recording.calls[-1] == (0, None) and recording.candidate_calls == 0
    finally:
        store.close()


def _fifty_traces(tmp_path: Path, *, failing: int) -> DuckDBStore:
    """A store holding fifty two-span traces half a minute apart from T0, committed (row
    ids 0-99); every fifth one failing, from trace ``failing + 1`` on."""
    store = DuckDBStore(tmp_path / "s.duckdb")
    spans = [s for n in range(50) for s in _trace(n + 1, T0 + n * MINUTE // 2, n % 5 == failing)]
    store.write(request_from_spans(spans))
    store.flush()
    return store


def test_while_a_report_watches_the_writer_counts_each_commit(tmp_path: Path) -> None:
    """After a report, the writer counts the spans of each commit (every start time) and
    the next report merges those counts: it reads from the store only what was committed
    after the writer's last count and what is not committed yet. A trace of the commits
    with a span beyond the hour searched around the range is counted again whole."""
    store = _fifty_traces(tmp_path, failing=0)
    try:
        recording = Recording(store)
        counted = KeptCounts()
        start, end = T0, T0 + HOUR_NS
        # Nobody watched yet: the writer counted nothing, and the report counts from scratch.
        assert store.logged_failure_parts(start, end, 0) is None
        store_failure_report(recording, start, end, counted=counted)  # type: ignore[arg-type]
        assert recording.calls == [(0, None)]
        more = [s for n in range(50, 53) for s in _trace(n + 1, T0 + n * MINUTE // 2, True)]
        # A span of trace 51 two hours after the range: outside the searched hour.
        stray = dataclasses.replace(
            _trace(51, end + 2 * HOUR_NS, False)[1], span_id="00000033000000ff"
        )
        store.write(request_from_spans(more[:3]))  # trace 52's root in one commit,
        store.flush()
        store.write(request_from_spans([*more[3:], stray]))  # its child in the next
        store.flush()
        logged = store.logged_failure_parts(start, end, 100)
        assert logged is not None
        next_rowid, rows, beyond = logged
        assert next_rowid == 107  # the 100 counted first, then 3 and 4 spans committed
        assert set(rows["trace_id"]) == {f"{n:032x}" for n in (52, 53)}
        assert beyond == [bytes.fromhex(f"{51:032x}")]
        report = store_failure_report(recording, start, end, counted=counted)  # type: ignore[arg-type]
        # Only the spans after the writer's counts were read (none), and trace 51 whole.
        assert recording.calls[1:] == [(107, None), (0, [bytes.fromhex(f"{51:032x}")])]
        assert recording.read[1] == set() and recording.read[2] == {f"{51:032x}"}
        assert report["summary"]["traces"] == 53 and report["summary"]["ok"] == 40
        assert report == old_report(store, start, end)
        rows_now = counted.rows(store, start, end)
        assert rows_now is not None
        assert as_set(rows_now.all()) == as_set(store.failure_traces(start, end))
    finally:
        store.close()


def test_between_reports_the_kept_counts_follow_the_writers(tmp_path: Path) -> None:
    """``follow_writer`` (a background thread's step while reports come) merges what the
    writer counted since the latest report, reading from the store only the traces with a
    span beyond the hour searched (whole); the next report then starts where it stopped,
    and is the same. Nothing to follow once the store is closed."""
    store = _fifty_traces(tmp_path, failing=0)
    try:
        recording = Recording(store)
        counted = KeptCounts()
        start, end = T0, T0 + HOUR_NS
        assert not counted.follow_writer(recording)  # type: ignore[arg-type]  # nothing kept
        store_failure_report(recording, start, end, counted=counted)  # type: ignore[arg-type]
        assert counted.follow_writer(recording)  # type: ignore[arg-type]  # nothing new: still on
        assert recording.calls == [(0, None)]
        more = [s for n in range(50, 53) for s in _trace(n + 1, T0 + n * MINUTE // 2, True)]
        stray = dataclasses.replace(
            _trace(51, end + 2 * HOUR_NS, False)[1], span_id="00000033000000ff"
        )
        store.write(request_from_spans(more[:3]))
        store.flush()
        store.write(request_from_spans([*more[3:], stray]))
        store.flush()
        assert counted.follow_writer(recording)  # type: ignore[arg-type]
        # Nothing read but trace 51 (whole: its stray span left the hour searched).
        assert recording.calls[1:] == [(0, [bytes.fromhex(f"{51:032x}")])]
        rows = counted.rows(store, start, end)
        assert rows is not None
        assert as_set(rows.all()) == as_set(store.failure_traces(start, end))
        assert rows.covered == 53
        report = store_failure_report(recording, start, end, counted=counted)  # type: ignore[arg-type]
        assert recording.calls[-1] == (107, None)  # from where the follower stopped
        assert report == old_report(store, start, end)
        # The writer's counts before the one kept range's row id are gone.
        assert store._failure_parts is not None and len(store._failure_parts) == 0
    finally:
        store.close()
    assert not counted.follow_writer(store)  # closed: the writer counts nothing more


def test_the_server_source_follows_the_writer_in_the_background(tmp_path: Path) -> None:
    """The server's source starts a thread after a report that keeps its counts: spans
    written after it are merged without another report, and the thread ends when there
    is nothing left to follow (the store closed)."""
    store = _fifty_traces(tmp_path, failing=0)
    source = LocalSource(store, keep_failure_counts=True)
    start, end = T0, T0 + HOUR_NS
    try:
        source.failures(start, end)
        counted = source._failure_counts
        assert counted is not None and counted.follow_every_s is not None
        counted.follow_every_s = 0.05
        assert counted._following
        more = [s for n in range(50, 53) for s in _trace(n + 1, T0 + n * MINUTE // 2, True)]
        store.write(request_from_spans(more))
        store.flush()
        assert wait_until(lambda: counted._latest is not None and counted._latest.next_rowid == 106)
        assert source.failures(start, end) == old_report(store, start, end)
    finally:
        store.close()
    assert wait_until(lambda: not counted._following, timeout=2 * failures_store.FOLLOW_EVERY_S + 5)


def test_the_listed_traces_spans_are_read_from_the_row_id_the_counts_give(
    tmp_path: Path,
) -> None:
    """The kept counts know each trace's first and last row id: the spans of the traces
    a report lists are read only within those (at most three ranges; DuckDB skips the row groups
    outside) and after the counts, and the report is the same."""
    store = _fifty_traces(tmp_path, failing=4)
    try:
        recording = Recording(store)
        counted, kept = KeptCounts(), KeptRows()
        start, end = T0, T0 + HOUR_NS
        store_failure_report(recording, start, end, counted=counted, kept=kept)  # type: ignore[arg-type]
        ids, rowids = recording.frames[0]
        # From trace 5's spans (row ids 8 and 9) to trace 50's (98, 99), and all after.
        assert len(ids) == 10 and rowids == RowIdRanges(100, ((8, 99),))
        more = [s for n in range(50, 53) for s in _trace(n + 1, T0 + n * MINUTE // 2, True)]
        store.write(request_from_spans(more))
        store.flush()
        report = store_failure_report(recording, start, end, counted=counted, kept=kept)  # type: ignore[arg-type]
        new_ids = [f"{n + 1:032x}" for n in range(50, 53)]
        assert recording.frames[1] == (new_ids, RowIdRanges(106, ((100, 105),)))
        assert report == old_report(store, start, end)
        assert report["summary"]["traces"] == 53 and report["summary"]["ok"] == 40
    finally:
        store.close()


def test_the_row_id_ranges_read_are_few_and_leave_out_the_widest_gaps() -> None:
    row_group = 122_880
    assert failures_store._fewest_ranges([]) == ()
    assert failures_store._fewest_ranges([(5, 9), (8, 20), (30, 40)]) == ((5, 40),)
    far = [(0, 10), (10 * row_group, 10 * row_group + 5), (11 * row_group, 12 * row_group)]
    assert failures_store._fewest_ranges(far) == ((0, 10), (10 * row_group, 12 * row_group))
    # Five ranges, more than a row group apart: the two narrowest gaps are read through.
    spread = [(n * row_group, n * row_group + 1) for n in (0, 10, 12, 40, 51)]
    assert failures_store._fewest_ranges(spread) == (
        (0, 12 * row_group + 1),
        (40 * row_group, 40 * row_group + 1),
        (51 * row_group, 51 * row_group + 1),
    )


def test_a_trace_with_spans_where_the_range_moved_is_counted_again_whole(
    tmp_path: Path,
) -> None:
    """The searched range [start - 1 h, end + 1 h) moves with the range: a trace with a
    span that left it (or entered it) is read again whole, the others are not."""
    store = DuckDBStore(tmp_path / "s.duckdb")
    try:
        early = _trace(1, T0 - HOUR_NS + 2 * MINUTE, True)  # a span leaves at the move
        late = [
            dataclasses.replace(s, trace_id=f"{1:032x}") for s in _trace(2, T0 + 5 * MINUTE, False)
        ]
        other = _trace(3, T0 + 10 * MINUTE, True)
        store.write(request_from_spans([*early, *late, *other]))
        store.flush()
        recording = Recording(store)
        counted = KeptCounts()
        store_failure_report(recording, T0, T0 + HOUR_NS, counted=counted)  # type: ignore[arg-type]
        moved = T0 + 5 * MINUTE
        report = store_failure_report(recording, moved, T0 + HOUR_NS, counted=counted)  # type: ignore[arg-type]
        assert recording.calls[1:] == [(6, None), (0, [bytes.fromhex(f"{1:032x}")])]
        assert recording.read[2] == {f"{1:032x}"}
        assert report == old_report(store, moved, T0 + HOUR_NS)
    finally:
        store.close()


def test_a_range_too_large_to_keep_counts_its_possible_errors_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A range covering more than MAX_KEPT_TRACES traces (the whole store, say) is not
    kept, so the reports that follow it count with failure_candidates, which reads fewer
    rows than failure_traces (a row for every covered trace); the reports stay exact."""
    monkeypatch.setattr(failures_store, "MAX_KEPT_TRACES", 5)
    store = DuckDBStore(tmp_path / "s.duckdb")
    try:
        spans = [s for n in range(8) for s in _trace(n + 1, T0 + n * MINUTE, n % 3 == 0)]
        store.write(request_from_spans(spans))
        store.flush()  # committed: a kept count follows from row id 16 on
        recording = Recording(store)
        counted = KeptCounts()
        start, end = T0, T0 + HOUR_NS
        for _ in range(3):
            report = store_failure_report(recording, start, end, counted=counted)  # type: ignore[arg-type]
            assert report == old_report(store, start, end)
        # The first report found it too large; the next two counted the possible errors.
        assert recording.calls == [(0, None)] and recording.candidate_calls == 2
        # Under the bound (the last report said 8), the range is kept again.
        monkeypatch.setattr(failures_store, "MAX_KEPT_TRACES", 50)
        for _ in range(2):
            report = store_failure_report(recording, start, end, counted=counted)  # type: ignore[arg-type]
            assert report == old_report(store, start, end)
        assert recording.calls == [(0, None), (0, None), (16, None)]
        assert recording.candidate_calls == 2
    finally:
        store.close()


@pytest.mark.parametrize(("cap", "third_call"), [(20, (16, None)), (10, (0, None))])
def test_the_cap_on_kept_traces_holds_over_every_range_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cap: int, third_call: tuple[int, None]
) -> None:
    """Two ranges over the same eight traces keep 16 traces' counts: under a cap of 20
    both stay and a report of the first follows its kept counts (from row id 16 on);
    under a cap of 10 the second pushed the first out, which then counts from scratch."""
    monkeypatch.setattr(failures_store, "MAX_KEPT_TRACES", cap)
    store = DuckDBStore(tmp_path / "s.duckdb")
    try:
        spans = [s for n in range(8) for s in _trace(n + 1, T0 + n * MINUTE, n % 3 == 0)]
        store.write(request_from_spans(spans))
        store.flush()
        recording = Recording(store)
        counted = KeptCounts()
        first, second = (T0, T0 + HOUR_NS), (T0 - 2 * HOUR_NS, T0 + 10 * MINUTE)
        for start, end in (first, second, first):
            report = store_failure_report(recording, start, end, counted=counted)  # type: ignore[arg-type]
            assert report == old_report(store, start, end)
        assert recording.calls == [(0, None), (0, None), third_call]
    finally:
        store.close()


def test_the_server_source_keeps_counts_and_a_one_shot_source_does_not(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "s.duckdb")
    try:
        store.write(request_from_spans(_trace(1, T0, True)))
        kept = LocalSource(store, keep_failure_counts=True)
        once = LocalSource(store)
        assert kept.failures(T0, T0 + HOUR_NS) == once.failures(T0, T0 + HOUR_NS)
        assert kept._failure_counts is not None and once._failure_counts is None
    finally:
        store.close()


def test_a_reader_that_cannot_list_changes_counts_every_time(tmp_path: Path) -> None:
    """Another process's store (the base reader's answer, None): no kept counts."""
    store = DuckDBStore(tmp_path / "s.duckdb")
    try:
        store.write(request_from_spans(_trace(1, T0, True)))

        class Blind(Recording):
            def data_versions(self, ranges: Sequence[tuple[int, int]]) -> None:
                return None  # cannot tell whether rows were deleted

        blind = Blind(store)
        counted = KeptCounts()
        assert counted.rows(blind, T0, T0 + HOUR_NS) is None  # type: ignore[arg-type]
        report = store_failure_report(blind, T0, T0 + HOUR_NS, counted=counted)  # type: ignore[arg-type]
        assert report == old_report(store, T0, T0 + HOUR_NS)
        assert blind.calls == []  # no failure_parts
    finally:
        store.close()


def test_a_deletion_starts_the_kept_counts_over(tmp_path: Path) -> None:
    """Row ids move when retention deletes rows: the report after a deletion counts from
    scratch (retention marks the change before it deletes, and after), and is exact."""
    import time

    now = time.time_ns()
    old = [s for n in range(5) for s in _trace(n + 1, now - 3 * HOUR_NS + n * MINUTE, True)]
    recent = [s for n in range(5, 9) for s in _trace(n + 1, now - HOUR_NS + n * MINUTE, n % 2 == 0)]
    path = tmp_path / "s.duckdb"
    store = DuckDBStore(path, max_commit_delay=0.2)
    try:
        store.write(request_from_spans([*old, *recent]))
        store.flush()
        recording = Recording(store)
        counted = KeptCounts()
        start, end = now - 4 * HOUR_NS, now
        store_failure_report(recording, start, end, counted=counted)  # type: ignore[arg-type]
        store_failure_report(recording, start, end, counted=counted)  # type: ignore[arg-type]
        assert [since for since, _ in recording.calls] == [0, 18]  # kept, then followed
    finally:
        store.close()
    policy = RetentionPolicy(max_age_seconds=2 * 3600, interval_seconds=0.2)
    store = DuckDBStore(path, max_commit_delay=0.2, retention=policy)
    try:
        recording = Recording(store)
        # The same kept counts, on the reopened store: row ids are those of the file.
        store_failure_report(recording, start, end, counted=counted)  # type: ignore[arg-type]
        assert recording.calls == [(18, None)]
        logged = store.logged_failure_parts(start, end, 18)  # the report watches
        assert logged is not None and logged[0] == 18 and logged[1].height == 0
        assert wait_until(lambda: store.ingest_stats()["retention"]["deleted_spans"] >= 10, 30)
        # The writer's counts by row id went with the deletion.
        assert store.logged_failure_parts(start, end, 18) is None
        report = store_failure_report(recording, start, end, counted=counted)  # type: ignore[arg-type]
        assert recording.calls[-1] == (0, None)  # counted from scratch
        assert report["summary"]["traces"] == 4
        assert report == old_report(store, start, end)
    finally:
        store.close()


def test_a_root_written_later_at_the_same_start_with_a_lower_id_is_the_root(
    tmp_path: Path,
) -> None:
    """Two parentless spans of one trace start together, written in two steps: the root
    is the lower span id whichever came first, as counting again finds it (the later
    one failed: the trace failed at its root)."""
    store = DuckDBStore(tmp_path / "s.duckdb")
    try:
        trace = _trace(1, T0 + MINUTE, False)
        first = dataclasses.replace(trace[0], span_id="bb00000000000001")
        store.write(request_from_spans([first, trace[1]]))
        store.flush()
        counted = KeptCounts()
        store_failure_report(store, T0, T0 + HOUR_NS, counted=counted)
        second = dataclasses.replace(
            first, span_id="aa00000000000001", name="GET /retry", status_code="ERROR"
        )
        store.write(request_from_spans([second]))
        for commit in (False, True):  # not committed yet, then committed
            if commit:
                store.flush()
            report = store_failure_report(store, T0, T0 + HOUR_NS, counted=counted)
            assert report == old_report(store, T0, T0 + HOUR_NS)
            assert report["summary"]["failed"] == 1, report["summary"]
    finally:
        store.close()

"""The failure report's counting pass kept between reports (analyzer.failures_store's
KeptCounts, the server's): brought up to date from the traces the store says changed and
those at the range's moved edges, it equals counting the whole range again, whatever the
writes and however the range moves; the report made with it equals the analysis of the
whole frame; it reads only the changed traces; and the store's list of changed traces
(spanstore.changes.ChangeLog.traces_since) forgets rather than misses.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import analyzer.failures_store as failures_store
from analyzer.failures_store import FOLLOW_STEP_NS, KeptCounts, store_failure_report
from analyzer.source import LocalSource
from spanstore.changes import NO_TRACES, ChangeLog
from spanstore.duckdb_store import DuckDBStore
from spanstore.model import HOUR_NS, Span
from spanstore.rows import request_from_spans
from tests.analyzer.test_failures_store import T0, old_report, traces

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
        rows = counted.rows(store, start, end)
        assert rows is not None
        fresh = store.failure_traces(start, end)
        assert fresh is not None
        assert as_set(rows) == as_set(fresh)
        assert rows.height == fresh.height  # no row twice
        report = store_failure_report(store, start, end, counted=counted)
        assert report == old_report(store, start, end)


class Recording:
    """A real store whose failure_traces calls are recorded (the rest passes through)."""

    def __init__(self, store: DuckDBStore) -> None:
        self._store = store
        self.calls: list[Sequence[bytes] | None] = []
        self.candidate_calls = 0

    def failure_candidates(
        self, start: int, end: int, service: str | None = None
    ) -> tuple[int, pl.DataFrame]:
        self.candidate_calls += 1
        return self._store.failure_candidates(start, end, service)

    def failure_traces(
        self, start: int, end: int, trace_ids: Sequence[bytes] | None = None
    ) -> pl.DataFrame | None:
        self.calls.append(None if trace_ids is None else list(trace_ids))
        return self._store.failure_traces(start, end, trace_ids)

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


def test_a_report_reads_only_the_traces_written_since(tmp_path: Path) -> None:
    """The second report of the same range reads the three traces written in between,
    not the fifty before them, and counts all fifty-three."""
    store = DuckDBStore(tmp_path / "s.duckdb")
    try:
        spans = [s for n in range(50) for s in _trace(n + 1, T0 + n * MINUTE // 2, n % 5 == 0)]
        store.write(request_from_spans(spans))
        recording = Recording(store)
        counted = KeptCounts()
        start, end = T0, T0 + HOUR_NS
        first = store_failure_report(recording, start, end, counted=counted)  # type: ignore[arg-type]
        assert recording.calls == [None]  # counted from scratch
        assert first["summary"]["traces"] == 50 and first["summary"]["ok"] == 40
        more = [s for n in range(50, 53) for s in _trace(n + 1, T0 + n * MINUTE // 2, True)]
        store.write(request_from_spans(more))
        second = store_failure_report(recording, start, end, counted=counted)  # type: ignore[arg-type]
        assert recording.calls[1] == sorted(bytes.fromhex(f"{n + 1:032x}") for n in range(50, 53))
        assert second["summary"]["traces"] == 53 and second["summary"]["ok"] == 40
        assert second == old_report(store, start, end)
        # A jump beyond FOLLOW_STEP_NS counts from scratch again.
        later = start + FOLLOW_STEP_NS + 1
        store_failure_report(recording, later, end + HOUR_NS, counted=counted)  # type: ignore[arg-type]
        assert recording.calls[-1] is None and recording.candidate_calls == 0
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
        recording = Recording(store)
        counted = KeptCounts()
        start, end = T0, T0 + HOUR_NS
        for _ in range(3):
            report = store_failure_report(recording, start, end, counted=counted)  # type: ignore[arg-type]
            assert report == old_report(store, start, end)
        # The first report found it too large; the next two counted the possible errors.
        assert recording.calls == [None] and recording.candidate_calls == 2
        # Under the bound (the last report said 8), the range is kept again.
        monkeypatch.setattr(failures_store, "MAX_KEPT_TRACES", 50)
        for _ in range(2):
            report = store_failure_report(recording, start, end, counted=counted)  # type: ignore[arg-type]
            assert report == old_report(store, start, end)
        assert recording.calls == [None, None] and recording.candidate_calls == 2
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
            def traces_changed_since(self, token: int | None) -> None:
                return None

        blind = Blind(store)
        counted = KeptCounts()
        assert counted.rows(blind, T0, T0 + HOUR_NS) is None  # type: ignore[arg-type]
        report = store_failure_report(blind, T0, T0 + HOUR_NS, counted=counted)  # type: ignore[arg-type]
        assert report == old_report(store, T0, T0 + HOUR_NS)
        assert blind.calls == []
    finally:
        store.close()


def test_changelog_lists_the_traces_shown_since_a_generation() -> None:
    log = ChangeLog(max_listed_traces=5)
    start, _ = log.traces_since(None)
    assert log.traces_since(None) == (start, None)  # no generation: nothing is listed
    log.mark([1], pa.array([b"a", b"b", b"a"]))
    middle, ids = log.traces_since(start)
    assert ids is not None and sorted(ids.to_pylist()) == [b"a", b"b"]
    log.mark([1], NO_TRACES)  # a commit of rows shown already
    log.mark([2], pa.chunked_array([[b"c"]]))
    now, ids = log.traces_since(middle)
    assert ids is not None and ids.to_pylist() == [b"c"]
    assert log.traces_since(now)[1] is not None and len(log.traces_since(now)[1]) == 0  # type: ignore[arg-type]
    # Past the bound the oldest generations are forgotten: a reader that far behind is
    # told so (None), never given a partial list.
    log.mark([3], pa.array([b"d", b"e", b"f"]))
    assert log.traces_since(start)[1] is None
    listed = log.traces_since(middle)[1]
    assert listed is not None and sorted(listed.to_pylist()) == [b"c", b"d", b"e", b"f"]
    # A change it cannot list (retention's deletions, or a mark without traces).
    log.mark_all()
    assert log.traces_since(now)[1] is None
    after, _ = log.traces_since(None)
    log.mark([4])
    assert log.traces_since(after)[1] is None


def test_the_store_lists_a_write_before_it_is_acknowledged(tmp_path: Path) -> None:
    """A write's traces are listed by the time ``write`` returns (read-your-writes for a
    report brought up to date from the list), and the later commit lists none again."""
    store = DuckDBStore(tmp_path / "s.duckdb")
    try:
        answer = store.traces_changed_since(None)
        assert answer is not None
        token, _ = answer
        store.write(request_from_spans(_trace(7, T0, False)))
        answer = store.traces_changed_since(token)
        assert answer is not None and answer[1] == [bytes.fromhex(f"{7:032x}")]
        store.flush()
        after = store.traces_changed_since(answer[0])
        assert after is not None and after[1] == []
    finally:
        store.close()

"""The failure report from a store, at a cost that follows what it lists, not the range.

:func:`analyzer.failures.failure_report` analyses a span frame that holds every span of the
range. Over a busy hour that is millions of spans read out of the store and through polars,
while the report lists only the traces that failed (issue 20: 12 s for an hour of 2.5M
spans, idle). Here the store does the counting and only the listed traces are read:

1. ``reader.failure_candidates`` counts the traces whose root starts in the range (with
   ``service``: those that touch it) and returns the few spans of theirs that may be errors
   (status ERROR or an HTTP code of 400 or more). The exact error rule
   (:func:`analyzer.failures.errors_among`: cancellations, kinds) runs on those rows in
   polars, as it does in the full analysis, so which traces fail, and which fail at the
   root, is exactly what ``failure_report`` finds.
2. At most ``limit`` failing traces are listed: all of them when they are that few, else the
   ``failed`` ones first, then the newest (an incident's worst and latest).
3. Only the listed traces' spans are read (``reader.traces_frame``, within an hour of the
   range, where ``span_frame`` looks for whole traces), with the entities of those spans,
   and ``failure_report`` analyses them: each trace's row depends on its own spans only,
   so the rows are the same.
4. Rows are kept between reports (:class:`KeptRows`, the server's source keeps one) with
   the fingerprint step 1 gives each trace over [lo, hi) (how many spans, the first and
   last start, the span ids' hashes xor-ed): a listed trace whose fingerprint did not
   change is not read or analysed again. Spans only ever join or leave a trace's range
   whole, so the same fingerprint means the same spans (up to a 64-bit hash collision
   after spans were both deleted and added, which retention and a new span of the same
   trace would have to do at once). Retention deletes a trace's entity rows after its
   spans, so every kept row is dropped when the store says rows may have been deleted
   (``_deletions``); a reader that cannot say (another process's store, ClickHouse) keeps
   nothing. A kept row is never older than the data it shows.
   Under a flood, successive reports of the last hour analyse only the newly listed
   traces.
5. The counting pass is kept too (:class:`KeptCounts`, one per server): per trace with a
   span within an hour of the range, counts that merge (the earliest parentless span and
   the earliest span, the last start, the span count, the span ids' hashes xor-ed) and
   its possible errors, over the committed spans below a row id
   (``reader.failure_parts``). The next report reads only the spans committed since
   (DuckDB skips the row groups below that row id) and those not committed yet, merges
   them in, and counts again whole the traces with a span where the searched range
   moved (``reader.trace_ids_starting_in``). Each trace's rows depend on its own spans in
   [lo, hi) only, so the rows derived equal ``reader.failure_traces`` of the range. Row
   ids move only when rows are deleted: any deletion (retention marks one before and
   after it deletes) starts the counts over. While reports come, the store's writer
   counts each commit itself (``reader.logged_failure_parts``,
   spanstore/failure_parts_log.py), so a report reads from the store only what was
   committed after the writer's last count and what is not committed yet: under a flood
   neither every span of the hour nor everything written since the last report (the
   first report after 30 s without one read 2.95M spans). The rows derived from the
   counts, and which of those traces fail, are kept too, and only those of the traces
   whose counts changed are derived again: the error rules then run on the changed and
   the listed traces' rows alone, not on every possible error of the range. Between
   reports the server's source merges the writer's counts into the latest report's
   kept counts every ``FOLLOW_EVERY_S`` (:meth:`KeptCounts.follow_writer`, a thread at
   the ingest's niceness), so the first report after a stretch without one finds
   seconds to merge, not the stretch. Service reports, other stores and ranges that
   jumped count from scratch.
   A range covering more than ``MAX_KEPT_TRACES`` traces is not kept, and the reports
   that follow it count with ``failure_candidates`` as they would without kept counts.

The summary's counts are the exact ones of step 1. ``omitted_traces`` (an addition to the
SPEC's shape) counts the failing traces not listed; when it is not 0, ``summary.patterns``
and ``by_service`` describe the listed traces (their pattern and root cause need the
trace's tree; ``by_service`` counts their error spans from step 1's rows). When nothing is
omitted the report equals ``failure_report`` over the range's whole frame
(``tests/analyzer/test_failures_store.py``), kept rows or not.

The two reads are two statements: spans arriving between them can make a listed trace's
row newer than the counts (never an error counted twice or lost from the counts).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import polars as pl

from analyzer.failures import errors_among, failure_report, report_json
from spanstore import SpanReader
from spanstore.deadline import carried
from spanstore.failure_parts_log import WATCH_S
from spanstore.model import HOUR_NS
from spanstore.niceness import lower_thread_priority
from spanstore.reader import FAILURE_CANDIDATES_SCHEMA, RowIdRanges
from spanstore.reader import FAILURE_PARTS_SCHEMA as PARTS_SCHEMA

__all__ = ["LISTED_TRACES", "KeptCounts", "KeptRows", "store_failure_report"]

log = logging.getLogger(__name__)

#: At most this many failing traces are listed (each is a few hundred bytes of JSON and one
#: tree analysis); the counts always cover every trace of the range.
LISTED_TRACES: Final = 1000

EntitiesFor = Callable[[list[str]], Mapping[str, Mapping[str, Sequence[str]]]]
#: What a trace's row is made of: its spans in [lo, hi) (failure_candidates' columns),
#: and the store's deletion generation (``_deletions``).
Fingerprint: TypeAlias = tuple[int, ...]
_FINGERPRINT: Final = ("trace_spans", "first_start", "last_start", "span_hash")
#: The columns failure_traces' rows carry per trace besides its id.
_FINGERPRINT_OF_ROWS: Final = ("root_start", *_FINGERPRINT)
#: An hour no span starts in: its data version changes only when the store marks every
#: hour changed, which it does after each retention step (``ChangeLog.mark_all``).
_QUIET_HOUR: Final = (1 << 62, (1 << 62) + HOUR_NS)


def _deletions(reader: SpanReader) -> int | None:
    """A number that changes whenever retention may have deleted rows (None: the reader
    cannot tell). Retention deletes a trace's spans and its entity rows in separate steps:
    a row made between the two would keep a deleted span's entity values, its spans'
    fingerprint unchanged."""
    versions = reader.data_versions([_QUIET_HOUR])
    return None if versions is None else versions[0]


class KeptRows:
    """Report rows of listed traces, by trace id and fingerprint, for the next reports.

    Bounded: the rows of the traces listed last are kept, ``capacity`` at most (a few
    reports' worth: other services' or ranges' reports list other traces)."""

    def __init__(self, capacity: int = 4 * LISTED_TRACES) -> None:
        self.capacity = capacity
        self._rows: OrderedDict[str, tuple[Fingerprint, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._rows)

    def take(self, fingerprints: Mapping[str, Fingerprint]) -> dict[str, dict[str, Any]]:
        """Copies of the kept rows of these traces whose fingerprint is the same."""
        found: dict[str, dict[str, Any]] = {}
        with self._lock:
            for trace_id, fingerprint in fingerprints.items():
                kept = self._rows.get(trace_id)
                if kept is not None and kept[0] == fingerprint:
                    self._rows.move_to_end(trace_id)
                    found[trace_id] = _copied(kept[1])
        return found

    def keep(self, rows: Iterable[dict[str, Any]], fingerprints: Mapping[str, Fingerprint]) -> None:
        with self._lock:
            for row in rows:
                fingerprint = fingerprints.get(row["trace_id"])
                if fingerprint is not None:
                    self._rows[row["trace_id"]] = (fingerprint, _copied(row))
                    self._rows.move_to_end(row["trace_id"])
            while len(self._rows) > self.capacity:
                self._rows.popitem(last=False)


#: A kept count is brought up to date while its range moved forward by at most this much
#: (the traces with a span where the searched range moved are counted again whole); past
#: it, counting from scratch costs about the same.
FOLLOW_STEP_NS: Final = 15 * 60 * 1_000_000_000
#: Counts of more traces than this (those with a span within an hour of the range, over
#: every range kept) are not kept (memory: ~330 bytes a trace with its rows and failing
#: traces, measured at 390k traces: ~160 MiB at the cap). Past it a report counts with
#: ``failure_candidates``, over every span of the range: at 200k traces, kept counts cost
#: 0.18 s a report against 0.96 s (docs/performance.md, "#20", session 17), so the cap
#: is where a saturating flood of ~2.5 minutes leaves the last hour, not lower.
MAX_KEPT_TRACES: Final = 500_000
#: While reports come, the latest report's kept counts are brought up to date from the
#: store's writer's counts this often, in the background (``KeptCounts.follow_writer``).
FOLLOW_EVERY_S: Final = 2.0
#: Kept counts older than this that the store's writer did not bring up to date
#: (spanstore/failure_parts_log.py: nobody watched) are counted again from scratch.
UNLOGGED_DELTA_S: Final = 20.0
#: A range found too large to keep is counted again whole (to see whether it still is)
#: after this long.
REMEASURE_S: Final = 300.0

#: The per-trace counts of failure_parts (failure_parts_rows.sql) that merge.
_TRACE_COLUMNS: Final = (
    "trace_id",
    "rooted_start",
    "rooted_id",
    "first_start",
    "first_id",
    "last_start",
    "trace_spans",
    "span_hash",
    "first_rowid",
    "last_rowid",
)
#: A possible error's columns (failure_candidates' spellings).
_SPAN_COLUMNS: Final = (
    "trace_id",
    "span_id",
    "service_name",
    "kind",
    "status_code",
    "status_message",
    "exception_type",
    "exception_message",
    "http_status_code",
)


class CountedRows:
    """What :meth:`KeptCounts.rows` gives a report of [start, end): how many traces it
    covers, its failing traces (``failing_traces``' rows), and ``reader.failure_traces``'
    rows, of every trace (:meth:`all`) or of a few (:meth:`of`). The kept rows are not
    filtered or copied for the range unless asked: a report lists a thousand traces of
    the hundreds of thousands kept under a flood."""

    def __init__(
        self,
        start: int,
        end: int,
        covered: int,
        failing: pl.DataFrame,
        kept: pl.DataFrame,
        shown: pl.DataFrame | None = None,
    ) -> None:
        self.covered = covered
        self.failing = failing
        self._in_range = (pl.col("root_start") >= start) & (pl.col("root_start") < end)
        self._kept = kept  # rows of every root start
        # The rows of the traces that spans shown this once touched: they replace kept's.
        self._shown = shown

    def _parts(self) -> tuple[pl.DataFrame, ...]:
        if self._shown is None:
            return (self._kept,)
        return (self._kept.filter(~_ids_in(self._shown)), self._shown)

    def all(self) -> pl.DataFrame:
        """Every row of the range (``reader.failure_traces(start, end)``)."""
        return pl.concat([part.filter(self._in_range) for part in self._parts()])

    def of(self, trace_ids: Sequence[str]) -> pl.DataFrame:
        """The rows of these traces (within the range)."""
        wanted = pl.col("trace_id").is_in(pl.Series(list(trace_ids), dtype=pl.String).implode())
        return pl.concat([part.filter(wanted & self._in_range) for part in self._parts()])


@dataclass(frozen=True)
class _Counted:
    deletions: int  # the store's deletion generation (``_deletions``) when counted
    next_rowid: int  # every committed span below this row id is counted
    start: int
    end: int
    traces: pl.DataFrame  # _TRACE_COLUMNS of every trace with a span in [lo, hi)
    spans: pl.DataFrame  # _SPAN_COLUMNS of their possible errors
    rows: pl.DataFrame  # _trace_rows of those: failure_traces' rows, every root start
    failing: pl.DataFrame  # _failing_of those rows: the failing traces, every root start
    counted_at: float  # time.monotonic() when brought up to date

    def followed_by(self, start: int, end: int) -> bool:
        return _follows(self.start, self.end, start, end)


@dataclass(frozen=True)
class _TooLarge:
    """A range whose counts were too large to keep (counted with ``failure_candidates``)."""

    start: int
    end: int
    covered: int  # the traces it covered (or had within an hour of it, counted by rows())
    measured: float  # time.monotonic() when ``covered`` was counted

    def followed_by(self, start: int, end: int) -> bool:
        return _follows(self.start, self.end, start, end)


def _follows(start: int, end: int, next_start: int, next_end: int) -> bool:
    return start <= next_start <= start + FOLLOW_STEP_NS and end <= next_end <= end + FOLLOW_STEP_NS


class KeptCounts:
    """The counting pass of the latest reports (step 5 of the module's docstring).

    Per trace with a span within an hour of the range (where a report searches whole
    traces) it keeps counts that merge: the earliest parentless span and the earliest
    span (start, then span id), the last start, the span count and the span ids' hashes
    xor-ed; and the spans that may be errors. They count the committed spans below a row
    id. The next report reads only the spans committed since (DuckDB skips the row
    groups below that row id) and those not committed yet, merges them in, and counts
    again whole the traces with a span where the searched range moved. Each trace's
    rows depend on its own spans in the searched range alone, so the rows it derives are
    those of ``failure_traces`` (tests/analyzer/test_failures_kept_counts.py). Row ids
    move only when rows are deleted: any deletion (retention) starts the counts over.

    A few ranges are kept (the Failures page's and the overview's, say); a report takes
    the newest one its range follows, and replaces it with its own. A range covering more
    than ``MAX_KEPT_TRACES`` traces (the whole store, say) is not kept, and the reports
    that follow it count with ``failure_candidates``: that reads fewer rows than these
    counts, which only pay when kept."""

    def __init__(
        self,
        capacity: int = 4,
        *,
        follow_every_s: float | None = None,
        follow_niceness: int = 0,
    ) -> None:
        """``follow_every_s``: while reports come (``WATCH_S``), a thread brings the
        latest report's counts up to date from the store's writer's this often
        (:meth:`follow_writer`), at ``follow_niceness`` steps nicer than the report's
        thread; None: only reports do (the default: one-shot and test sources)."""
        self.capacity = capacity
        self.follow_every_s = follow_every_s
        self.follow_niceness = follow_niceness
        self._kept: list[_Counted] = []
        self._too_large: list[_TooLarge] = []
        self._latest: _Counted | None = None  # the counts the last rows() derived from
        self._lock = threading.Lock()
        self._follow_lock = threading.Lock()  # guards the two below
        self._following = False  # a thread follows the writer
        self._asked_at = 0.0  # time.monotonic() of the last report that kept counts

    def rowid_ranges(
        self, reader: SpanReader, start: int, end: int, trace_ids: Sequence[str]
    ) -> tuple[RowIdRanges, int] | None:
        """(where the committed spans of these traces within an hour of [start, end) lie,
        by row id, the deletion generation that holds for) from the counts the last
        :meth:`rows` of this range derived from; None when there are none (or rows may
        have moved since). Spans not committed yet have negative row ids: they are read
        whatever the ranges. The ranges hold while the generation is the same: read it
        again after the read that uses them."""
        with self._lock:
            latest = self._latest
        if latest is None or (latest.start, latest.end) != (start, end) or not trace_ids:
            return None
        deletions = _deletions(reader)
        if deletions != latest.deletions:
            return None
        # Spans committed after the counts lie from their row id on: every trace may have
        # some there; a trace counted has the rest within its first and last row id.
        found = latest.traces.filter(pl.col("trace_id").is_in(list(trace_ids)))
        spans = sorted(found.select("first_rowid", "last_rowid").iter_rows())
        return RowIdRanges(latest.next_rowid, _fewest_ranges(spans)), deletions

    def rows(self, reader: SpanReader, start: int, end: int) -> CountedRows | None:
        """``reader.failure_traces(start, end)`` and how many traces it covers, from kept
        counts where they follow;
        None when the report should count with ``failure_candidates`` instead (then tell
        :meth:`counted` what it covered): the reader cannot answer, or the range follows
        one too large to keep."""
        with self._lock:  # one report at a time brings the kept counts up to date
            deletions = _deletions(reader)
            if deletions is None:
                return None
            followed = [
                kept
                for kept in self._kept
                if kept.followed_by(start, end) and kept.deletions == deletions
            ]
            base = max(followed, key=lambda kept: kept.next_rowid, default=None)
            if base is None:
                large = [r for r in self._too_large if r.followed_by(start, end)]
                if large and large[-1].covered > MAX_KEPT_TRACES:  # the newest one
                    return None
            counted = _counted(reader, base, start, end, deletions)
            if counted is None:
                return None
            kept, shown_traces, shown_spans = counted
            if base is not None:
                self._kept.remove(base)
            if _deletions(reader) != deletions:
                # Retention deleted rows meanwhile: row ids may have moved. Count again
                # in one statement, and keep nothing from this round.
                fresh = reader.failure_traces(start, end)
                if fresh is None:
                    return None
                covered = fresh["trace_id"].n_unique()
                return CountedRows(start, end, covered, _failing_of(fresh), fresh)
            self._latest = kept
            if self._keep(kept):
                reader.watch_failure_parts(kept.next_rowid, self._needed_from())
                self._follow(reader)
            else:
                self._note(start, end, kept.traces.height)
            # Every trace counted has rows, and each trace one row in ``traces``: the
            # covered traces by an integer filter, not by hashing the rows' trace ids.
            covered = _covered(kept.traces, start, end)
            failing, shown_rows = kept.failing, None
            if shown_traces.height:
                # The rows of the traces the spans shown this once touch, derived again.
                shown = _ids_in(shown_traces)
                counted_before = kept.traces.filter(shown)
                touched = _merged(counted_before, shown_traces)
                touched_spans = pl.concat([kept.spans.filter(shown), shown_spans])
                shown_rows = _trace_rows(touched, touched_spans)
                failing = pl.concat([failing.filter(~shown), _failing_of(shown_rows)])
                covered += _covered(touched, start, end) - _covered(counted_before, start, end)
            in_range = (pl.col("root_start") >= start) & (pl.col("root_start") < end)
            return CountedRows(start, end, covered, failing.filter(in_range), kept.rows, shown_rows)

    def _keep(self, kept: _Counted) -> bool:
        """Keep these counts (False: too large to keep). Holds ``_lock``."""
        if kept.traces.height > MAX_KEPT_TRACES:
            return False
        self._kept.append(kept)
        del self._kept[: -self.capacity]
        # The cap holds for every range kept together: the oldest make room.
        while sum(k.traces.height for k in self._kept) > MAX_KEPT_TRACES:
            del self._kept[0]
        return True

    def _needed_from(self) -> int:
        """The row id the oldest kept counts end at (the writer's counts of the commits
        before it serve none of them). Holds ``_lock``."""
        return min(kept.next_rowid for kept in self._kept)

    def _follow(self, reader: SpanReader) -> None:
        """A report kept its counts: bring them up to date in the background from the
        writer's counts (:meth:`follow_writer`) until nobody asked for ``WATCH_S``."""
        if self.follow_every_s is None:
            return
        with self._follow_lock:
            self._asked_at = time.monotonic()
            if self._following:
                return
            self._following = True
        threading.Thread(
            target=self._follow_writer,
            args=(reader,),
            name="seqtrace-failure-counts",
            daemon=True,
        ).start()

    def _follow_writer(self, reader: SpanReader) -> None:
        # Work done ahead for the next report, as ingest's own: it waits for the reads.
        lower_thread_priority(self.follow_niceness)
        while True:
            time.sleep(self.follow_every_s or 0.0)
            began = time.monotonic()
            try:
                going = self.follow_every_s is not None and self.follow_writer(reader)
            except Exception as exc:  # a closed or broken store: the next report tells
                log.debug("the failure counts stopped following the writer: %s", exc)
                going = False
            with self._follow_lock:
                asked = self._asked_at
                if (not going and asked < began) or began - asked > WATCH_S:
                    self._following = False
                    return

    def follow_writer(self, reader: SpanReader) -> bool:
        """Bring the latest report's kept counts up to date with what the store's writer
        counted of its commits since (``reader.logged_failure_parts``), so that the next
        report of that range finds little to merge: under a flood a minute without a
        report leaves ~160k changed traces, 0.4-0.5 s of the first report's time
        (docs/performance.md, "#20", session 18). False when there is nothing to follow
        (no counts kept, rows may have moved, or the writer counts nothing from there)."""
        with self._lock:
            latest = self._latest
            if latest is None or not any(kept is latest for kept in self._kept):
                return False
        deletions = _deletions(reader)
        if deletions != latest.deletions:
            return False
        # Counted without the lock (the frames kept never change): a report does not wait
        # for this niced thread, and when one replaced the counts meanwhile this step's
        # are dropped (that report merged the same commits).
        counted = _counted(reader, latest, latest.start, latest.end, deletions, logged_only=True)
        if counted is None or _deletions(reader) != deletions:
            return False
        kept = counted[0]
        with self._lock:
            if self._latest is not latest or not any(k is latest for k in self._kept):
                return True
            self._kept = [k for k in self._kept if k is not latest]
            self._latest = kept
            if not self._keep(kept):
                self._note(kept.start, kept.end, kept.traces.height)
                return False
            reader.watch_failure_parts(kept.next_rowid, self._needed_from())
            return True

    def counted(self, start: int, end: int, covered: int) -> None:
        """A report of [start, end) that :meth:`rows` declined counted ``covered`` traces
        with ``failure_candidates``: the next report of a range following it counts the
        same way while it covers more than ``MAX_KEPT_TRACES``, else its counts are kept.
        The traces kept are those within an hour of the range, more than it covers: a
        range measured too large by that count stays so (for ``REMEASURE_S``) whatever
        ``covered`` says, or the reports would count both ways in turn."""
        with self._lock:
            now = time.monotonic()
            known = [
                r
                for r in self._too_large
                if r.followed_by(start, end) and now - r.measured < REMEASURE_S
            ]
            if known and known[-1].covered > covered:
                self._note(start, end, known[-1].covered, known[-1].measured)
            else:
                self._note(start, end, covered, now)

    def _note(self, start: int, end: int, covered: int, measured: float | None = None) -> None:
        self._too_large = [r for r in self._too_large if not r.followed_by(start, end)]
        when = time.monotonic() if measured is None else measured
        self._too_large.append(_TooLarge(start, end, covered, when))
        del self._too_large[: -self.capacity]


def _counted(
    reader: SpanReader,
    base: _Counted | None,
    start: int,
    end: int,
    deletions: int,
    *,
    logged_only: bool = False,
) -> tuple[_Counted, pl.DataFrame, pl.DataFrame] | None:
    """(the counts to keep for [start, end), the per-trace counts and possible errors of
    the spans shown this once: not committed yet, or committed after the counted row id
    by the time a second statement ran). ``logged_only``: ``base`` brought up to date
    with what the store's writer counted since alone (None when it counted nothing from
    there); the store is read only for traces to count again whole."""
    edges: list[bytes] = []
    since = 0
    logged: pl.DataFrame | None = None
    if base is not None:
        # The traces with a span where the searched range [lo, hi) moved: counted again
        # whole (their spans that left it, or that were outside it when counted).
        edges = reader.trace_ids_starting_in(
            [(base.start - HOUR_NS, start - HOUR_NS), (base.end + HOUR_NS, end + HOUR_NS)]
        )
        since = base.next_rowid
        # What the store's writer counted of its commits since (while reports watch):
        # only what it committed after that, and what it has not committed, is read.
        kept_by_writer = reader.logged_failure_parts(start, end, since)
        if kept_by_writer is not None:
            since, logged, beyond = kept_by_writer
            edges = sorted({*edges, *beyond})
        elif logged_only:
            return None
        elif time.monotonic() - base.counted_at > UNLOGGED_DELTA_S:
            # Everything committed since, read from the store, would cost more than
            # counting from scratch (a flood's 30 s: 2.8 s against 0.8 s).
            return _counted(reader, None, start, end, deletions)
    if logged_only:
        assert base is not None and logged is not None
        if since == base.next_rowid and not edges:
            return dataclasses.replace(base, counted_at=time.monotonic()), *_nothing_shown()
        next_rowid, parts = since, logged
    else:
        answer = reader.failure_parts(start, end, since)
        if answer is None:
            return None
        next_rowid, parts = answer
        if logged is not None and logged.height:
            parts = pl.concat([logged, parts])
    traces, spans = _split(parts, stored=True)
    if logged is not None and logged.height:
        traces = _combined(traces)  # a trace may have rows of several commits
    stored_traces = traces
    shown_traces, shown_spans = _split(parts, stored=False)
    if base is not None:
        outside = ~pl.col("trace_id").is_in([trace_id.hex() for trace_id in edges])
        traces = _merged(base.traces.filter(outside), traces.filter(outside))
        spans = pl.concat([base.spans.filter(outside), spans.filter(outside)])
        shown_traces, shown_spans = shown_traces.filter(outside), shown_spans.filter(outside)
        if edges:
            whole = reader.failure_parts(start, end, trace_ids=edges, next_rowid=next_rowid)
            if whole is None:
                return None
            edge_traces, edge_spans = _split(whole[1], stored=True)
            traces, spans = pl.concat([traces, edge_traces]), pl.concat([spans, edge_spans])
            more_traces, more_spans = _split(whole[1], stored=False)
            shown_traces = pl.concat([shown_traces, more_traces])
            shown_spans = pl.concat([shown_spans, more_spans])
    if base is None:
        rows = _trace_rows(traces, spans)
        failing = _failing_of(rows)
    else:
        # Only the traces whose counts changed get their rows derived again.
        edge_ids = pl.DataFrame(
            {"trace_id": [t.hex() for t in edges]}, schema={"trace_id": pl.String}
        )
        changed = _ids_in(stored_traces, edge_ids)
        changed_rows = _trace_rows(traces.filter(changed), spans.filter(changed))
        rows = pl.concat([base.rows.filter(~changed), changed_rows])
        failing = pl.concat([base.failing.filter(~changed), _failing_of(changed_rows)])
    kept = _Counted(
        deletions, next_rowid, start, end, traces, spans, rows, failing, time.monotonic()
    )
    return kept, _merged(shown_traces), shown_spans


def _nothing_shown() -> tuple[pl.DataFrame, pl.DataFrame]:
    """_counted's shown counts and possible errors when nothing is shown."""
    return _split(pl.DataFrame(schema=PARTS_SCHEMA), stored=False)


def _split(parts: pl.DataFrame, *, stored: bool) -> tuple[pl.DataFrame, pl.DataFrame]:
    """failure_parts' rows of one ``stored`` value: (per-trace counts merged, one row a
    trace; the possible errors)."""
    mine = parts.filter(pl.col("stored") == stored)
    traces = mine.filter(pl.col("row_kind") == "trace").select(_TRACE_COLUMNS)
    spans = mine.filter(pl.col("row_kind") == "span").select(_SPAN_COLUMNS)
    return traces, spans


def _merged(*frames: pl.DataFrame) -> pl.DataFrame:
    """Per-trace counts of several frames (each with one row a trace) as one row a
    trace: the rows of traces in more than one frame are combined, the others kept."""
    frames = tuple(f for f in frames if f.height)
    if not frames:
        return pl.DataFrame(schema={n: PARTS_SCHEMA[n] for n in _TRACE_COLUMNS})
    merged = frames[0]
    for other in frames[1:]:
        theirs = _ids_in(other)
        shared = merged.filter(theirs)
        if shared.height == 0:
            merged = pl.concat([merged, other])
            continue
        combined = _combined(pl.concat([shared, other]))
        merged = pl.concat([merged.filter(~theirs), combined])
    return merged


def _combined(traces: pl.DataFrame) -> pl.DataFrame:
    """Per-trace counts with one row a trace, however many rows a trace had (most
    have one: only the others are grouped)."""
    repeated = pl.col("trace_id").is_duplicated()
    several = traces.filter(repeated)
    if several.height == 0:
        return traces
    first = pl.col("first_start").min()
    rooted = pl.col("rooted_start").min()
    grouped = several.group_by("trace_id").agg(
        rooted.alias("rooted_start"),
        pl.col("rooted_id").filter(pl.col("rooted_start") == rooted).min(),
        first.alias("first_start"),
        pl.col("first_id").filter(pl.col("first_start") == first).min(),
        pl.col("last_start").max(),
        pl.col("trace_spans").sum(),
        pl.col("span_hash").bitwise_xor(),
        pl.col("first_rowid").min(),
        pl.col("last_rowid").max(),
    )
    return pl.concat([traces.filter(~repeated), grouped])


#: Row ids a row group holds (DuckDB's default): ranges closer than this are read as one.
_ROW_GROUP: Final = 122_880
#: The ranges traces_frame_since.sql takes.
_MAX_RANGES: Final = 3


def _fewest_ranges(spans: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """At most ``_MAX_RANGES`` row-id ranges [first, last] covering these (sorted), the
    widest gaps left out: ranges a row group apart or closer are one."""
    merged: list[tuple[int, int]] = []
    for first, last in spans:
        if merged and first <= merged[-1][1] + _ROW_GROUP:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    while len(merged) > _MAX_RANGES:
        gaps = [merged[i + 1][0] - merged[i][1] for i in range(len(merged) - 1)]
        i = gaps.index(min(gaps))
        merged[i : i + 2] = [(merged[i][0], max(merged[i][1], merged[i + 1][1]))]
    return tuple(merged)


def _ids_in(*frames: pl.DataFrame) -> pl.Expr:
    """Whether a row's trace is one of these frames' (as a filter)."""
    ids = pl.concat([frame.select("trace_id") for frame in frames])["trace_id"]
    return pl.col("trace_id").is_in(ids.implode())


def _trace_rows(traces: pl.DataFrame, spans: pl.DataFrame) -> pl.DataFrame:
    """failure_traces' rows, whatever the root start (a report keeps those in its
    range), from the per-trace counts (one row a trace) and possible errors: each
    possible error with ``is_root`` (it is the root: the earliest parentless span, else
    the earliest span), a trace without one as one row of nulls; each with its root
    start and fingerprint."""
    covered = traces.with_columns(
        pl.coalesce("rooted_start", "first_start").alias("root_start"),
        pl.when(pl.col("rooted_start").is_not_null())
        .then(pl.col("rooted_id"))
        .otherwise(pl.col("first_id"))
        .alias("root_id"),
    ).select("trace_id", "root_id", *_FINGERPRINT_OF_ROWS)
    errors = spans.join(covered, on="trace_id", how="inner").with_columns(
        (pl.col("span_id") == pl.col("root_id")).alias("is_root")
    )
    quiet = covered.join(errors.select("trace_id").unique(), on="trace_id", how="anti")
    columns = list(FAILURE_CANDIDATES_SCHEMA)
    rows = pl.concat(
        [errors.select(columns), quiet.select("trace_id", *_FINGERPRINT_OF_ROWS)],
        how="diagonal_relaxed",
    )
    return rows.select(columns).cast(dict(FAILURE_CANDIDATES_SCHEMA))  # type: ignore[arg-type]


def _copied(row: dict[str, Any]) -> dict[str, Any]:
    """A report row whose nested values are its own (callers may change what they get)."""
    return {
        **row,
        "root_cause": dict(row["root_cause"]),
        "entities": {key: list(values) for key, values in row["entities"].items()},
        "error_services": list(row["error_services"]),
    }


def _covered(traces: pl.DataFrame, start: int, end: int) -> int:
    """How many of these per-trace counts (one row a trace) have their root in the range:
    the earliest parentless span, else the earliest span (as ``_trace_rows``)."""
    root_start = pl.coalesce("rooted_start", "first_start")
    return int(traces.select(((root_start >= start) & (root_start < end)).sum()).item())


#: The threads a report reads its listed traces' entities on, beside its spans' read
#: (two: two reports at once do not wait for each other). Shared by the process: a thread
#: started per report would cost interpreter-lock hand-overs under a flood. The executor
#: starts a thread on a submit, so from a report's thread, at a reader's niceness.
_SIDE_READS: Final = ThreadPoolExecutor(max_workers=2, thread_name_prefix="seqtrace-report")


def _failing_of(rows: pl.DataFrame) -> pl.DataFrame:
    """``failing_traces`` of failure_traces' rows (each trace's depend on its own)."""
    return failing_traces(errors_among(rows.filter(pl.col("span_id").is_not_null())))


def failing_traces(errors: pl.DataFrame) -> pl.DataFrame:
    """One row per trace holding one of ``errors`` (``errors_among`` the rows of
    ``failure_candidates``): trace_id, root_start, root_error (its root is one of the
    errors) and the trace's fingerprint columns."""
    return errors.group_by("trace_id").agg(
        pl.col("root_start").first(),
        pl.col("is_root").fill_null(False).any().alias("root_error"),
        *(pl.col(name).first() for name in _FINGERPRINT if name in errors.columns),
    )


def listed_trace_ids(failing: pl.DataFrame, limit: int) -> list[str]:
    """The failing traces a report lists: every one up to ``limit``, else the failed
    first, then the newest root start (then the trace id, so the choice is stable).

    Under a flood most failing traces are partial and only the newest are listed: they
    are picked with ``top_k`` (linear) and only the chosen ones are sorted, instead of
    sorting every failing trace of the range at each report."""
    order = ["root_error", "root_start", "trace_id"]
    descending = [True, True, False]
    if limit <= 0:
        return []
    if failing.height > limit and failing["root_start"].null_count() == 0:
        failed = failing.filter(pl.col("root_error"))
        if failed.height < limit:
            newest = failing.filter(~pl.col("root_error")).top_k(
                limit - failed.height, by=["root_start", "trace_id"], reverse=[False, True]
            )
            failing = pl.concat([failed, newest])
        else:
            failing = failed
    ids: list[str] = failing.sort(order, descending=descending).head(limit)["trace_id"].to_list()
    return ids


def _fingerprints(
    failing: pl.DataFrame, trace_ids: list[str], generation: int
) -> dict[str, Fingerprint]:
    rows = failing.filter(pl.col("trace_id").is_in(trace_ids)).select("trace_id", *_FINGERPRINT)
    return {
        trace_id: (spans, first, last, digest, generation)
        for trace_id, spans, first, last, digest in rows.iter_rows()
        if None not in (spans, first, last, digest)
    }


def _by_service(rows: Sequence[Mapping[str, Any]], errors: pl.DataFrame) -> list[dict[str, Any]]:
    """``failure_report``'s ``by_service`` of these rows: per service the error spans of
    their traces (``errors``: the traces' error spans) and the rows whose root cause it is,
    by outcome; most causes first, then most failed, most error spans, the name."""
    error_spans = dict(errors.group_by("service_name").len().iter_rows())
    caused = Counter((row["root_cause"]["service"], row["outcome"]) for row in rows)
    services = set(error_spans) | {service for service, _ in caused}
    table = [
        {
            "service": service,
            "partial": caused[service, "partial"],
            "failed": caused[service, "failed"],
            "error_spans": int(error_spans.get(service, 0)),
        }
        for service in services
    ]
    table.sort(
        key=lambda s: (-(s["partial"] + s["failed"]), -s["failed"], -s["error_spans"], s["service"])
    )
    return table


def store_failure_report(
    reader: SpanReader,
    from_unix_nano: int,
    to_unix_nano: int,
    service: str | None = None,
    *,
    entities_for: EntitiesFor | None = None,
    limit: int = LISTED_TRACES,
    kept: KeptRows | None = None,
    counted: KeptCounts | None = None,
) -> dict[str, Any]:
    """The ``failures --json`` report for traces whose root starts in [from, to), read
    from ``reader`` (see the module's docstring). ``entities_for(trace_ids)`` gives the
    listed traces' entities (default: ``reader.trace_entities`` of their spans where the
    report reads them; with ``kept``, it must depend on those spans only). ``kept``:
    rows kept from earlier reports, reused where their trace did not change.
    ``counted``: the counting pass kept from earlier reports (used without ``service``)."""
    # Taken before the reads: a deletion during them only makes the next report read again.
    generation = _deletions(reader) if kept is not None else None
    if generation is None:
        kept = None  # no telling whether a kept row's entities were deleted since
    counted_rows = None
    if counted is not None and service is None:
        counted_rows = counted.rows(reader, from_unix_nano, to_unix_nano)
    errors: pl.DataFrame | None = None
    if counted_rows is not None:
        covered, failing = counted_rows.covered, counted_rows.failing
    else:
        covered, candidates = reader.failure_candidates(from_unix_nano, to_unix_nano, service)
        if counted is not None and service is None:
            counted.counted(from_unix_nano, to_unix_nano, covered)
        errors = errors_among(candidates)
        failing = failing_traces(errors)
    listed = listed_trace_ids(failing, limit)
    fingerprints = (
        _fingerprints(failing, listed, generation)
        if kept is not None and generation is not None
        else {}
    )
    rows = kept.take(fingerprints) if kept is not None else {}
    unread = [trace_id for trace_id in listed if trace_id not in rows]
    if unread:
        # The listed traces are mostly the newest: their spans lie in the last row groups,
        # and the kept counts know each one's first and last row id.
        rowids = None
        if counted_rows is not None and counted is not None:
            rowids = counted.rowid_ranges(reader, from_unix_nano, to_unix_nano, unread)
        # The entities of the spans read (within an hour of the range, as traces_frame),
        # looked up beside the spans' read: under a flood the two reads take a core each
        # from the niced ingest instead of one after the other.
        lo, hi = from_unix_nano - HOUR_NS, to_unix_nano + HOUR_NS
        lookup = entities_for or (lambda ids: reader.trace_entities(ids, lo, hi))
        entities = _SIDE_READS.submit(carried(lookup), unread)
        try:
            frame = reader.traces_frame(
                unread, from_unix_nano, to_unix_nano, None if rowids is None else rowids[0]
            )
            if rowids is not None and _deletions(reader) != rowids[1]:
                # Retention deleted rows meanwhile: row ids may have moved under the floor.
                frame = reader.traces_frame(unread, from_unix_nano, to_unix_nano)
        finally:
            found = entities.result()
        # Each row depends on its trace's spans only: no service filter here (step 1
        # chose the traces that touch it).
        fresh = failure_report(frame, found, from_unix_nano, to_unix_nano)["traces"]
        if kept is not None:
            kept.keep(fresh, fingerprints)
        rows.update((row["trace_id"], row) for row in fresh)
    traces = sorted(rows.values(), key=lambda row: (row["start_unix_nano"], row["trace_id"]))
    patterns = {"retried": 0, "degraded": 0, "failed_branch": 0, "failed": 0}
    patterns.update(Counter(row["pattern"] for row in traces))
    shown_ids = [row["trace_id"] for row in traces]
    if errors is None and counted_rows is not None:
        # Kept counts: the error rules run on the listed traces' rows alone.
        possible = counted_rows.of(shown_ids).filter(pl.col("span_id").is_not_null())
        listed_errors = errors_among(possible)
    else:
        assert errors is not None
        listed_errors = errors.filter(pl.col("trace_id").is_in(shown_ids))
    return report_json(
        from_unix_nano,
        to_unix_nano,
        service,
        covered=covered,
        failing=failing.height,
        failed=int(failing["root_error"].sum()) if failing.height else 0,
        patterns=patterns,
        traces=traces,
        by_service=_by_service(traces, listed_errors),
    )

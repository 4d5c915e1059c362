"""Kept trace shapes: each trace's fold row, written by the DuckDB writer thread.

A busy entity's diagram and ``flow --entity`` fold the entity's traces by their shape
(``flow_shapes.sql``). Computing a shape reads some 25 columns of every span of the trace,
and a busy entity's traces lie in every row group of the store: that read was most of a
first diagram (docs/performance.md, "#16 flows"). The ``trace_shapes`` table keeps the
row per trace, and ``flow_trace_shapes.sql`` uses a kept row while it still matches the
trace's spans (their count and a sum of their starts), else computes it again.

The rows come from two places, both written by the writer thread between transactions
(it owns every write, ARCHITECTURE.md):

- the backfill: while the writer is idle, one hour of span start time at a time (the
  newest first, once the hour is :data:`SETTLE_NS` old), each trace that starts in it,
  in steps of about :data:`SPANS_PER_STEP` spans (the hour's traces split by a hash of
  their id): the writer commits nothing during a step, so a step must stay short;
- the rows reads computed: a read hands them over (:meth:`TraceShapeKeeper.offer`), and
  the writer keeps those of traces that ended :data:`SETTLE_NS` ago at its next pause.

Rows are derived data: a wrong or stale one is never used (it does not match), so losing
some (a crash, a full queue) costs only speed.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from spanstore.reader import FLOW_SHAPES_SCHEMA

__all__ = ["HOUR_NS", "SETTLE_NS", "SPANS_PER_STEP", "TraceShapeKeeper", "TraceShapeStats"]

log = logging.getLogger(__name__)

HOUR_NS: Final = 3_600_000_000_000
#: An hour is backfilled, and a computed row kept, only this long after it ended: traces
#: still being written would get rows that stop matching at their next span.
SETTLE_NS: Final = 10 * 60 * 1_000_000_000
#: How far from its hour a trace's spans are read (analyzer.source's TRACE_REACH_NS).
MARGIN_NS: Final = HOUR_NS
#: The backfill's spans per step, about: an hour's traces are split into as many parts (by
#: a hash of the trace id) as it takes. One statement over a busy hour ran for 34 s (1.2M
#: spans at the server's 384 MB, DuckDB spilling) or ran out of memory after 70 s (0.9M
#: and 3.2M spans), the writer committing nothing meanwhile: a flood that began then found
#: the queue full. In parts of this size each took 0.4-1.3 s, those hours 18-30 s in all
#: (docs/performance.md, "#20", session 14).
SPANS_PER_STEP: Final = 50_000
#: Computed rows waiting for the writer, at most (more are dropped: only speed is lost).
MAX_OFFERED_ROWS: Final = 50_000

#: The columns of a kept row: flow_trace_shapes.sql's (trace ids as hex) and the check.
KEEP_COLUMNS: Final = (*FLOW_SHAPES_SCHEMA, "start_check")


@dataclass(slots=True)
class TraceShapeStats:
    hours_done: int = 0
    steps: int = 0  # backfill statements (an hour takes one per SPANS_PER_STEP spans)
    hours_to_do: int | None = None  # settled hours waiting; None: not counted yet
    hours_settling: int = 0  # hours with spans that ended less than SETTLE_NS ago
    rows_backfilled: int = 0
    rows_kept_from_reads: int = 0
    offered_rows_dropped: int = 0
    errors: int = 0
    last_error: str | None = None


class TraceShapeKeeper:
    """The writer thread's upkeep of ``trace_shapes``; :meth:`offer` from any thread,
    :meth:`keep_offered` and :meth:`backfill_step` on the writer's cursor between
    transactions. ``sql`` gives a statement of ``spanstore/sql/duckdb`` by name."""

    def __init__(self, sql: Callable[[str], str], clock: Callable[[], int] = time.time_ns):
        self._sql = sql
        self._clock = clock
        self.stats = TraceShapeStats()
        self._lock = threading.Lock()
        self._offered: list[pa.Table] = []
        self._offered_rows = 0
        #: The settled hours to backfill, newest first (None: not read from the store yet).
        self._hours: list[int] | None = None
        #: Hours with spans that are not settled yet (or were committed since the read).
        self._unsettled: set[int] = set()
        self._done: set[int] = set()
        #: The hour being backfilled: (its start, its parts, the next part).
        self._step: tuple[int, int, int] | None = None

    # ------------------------------------------------------------------ any thread

    def offer(self, rows: pa.Table) -> None:
        """Rows a read computed (flow_trace_shapes.sql's columns): those of traces that
        ended :data:`SETTLE_NS` ago wait for the writer (within :data:`MAX_OFFERED_ROWS`)."""
        settled = self._clock() - SETTLE_NS
        ends = pc.add(rows.column("start_unix_nano"), rows.column("duration_ns"))
        rows = rows.filter(pc.less(ends, settled)).select(list(KEEP_COLUMNS))
        if rows.num_rows == 0:
            return
        with self._lock:
            if self._offered_rows + rows.num_rows > MAX_OFFERED_ROWS:
                self.stats.offered_rows_dropped += rows.num_rows
                return
            self._offered.append(rows)
            self._offered_rows += rows.num_rows

    def has_offered(self) -> bool:
        return bool(self._offered)

    def snapshot(self) -> dict[str, Any]:
        stats = self.stats
        return {
            "hours_done": stats.hours_done,
            "steps": stats.steps,
            "hours_to_do": stats.hours_to_do,
            "hours_settling": stats.hours_settling,
            "rows_backfilled": stats.rows_backfilled,
            "rows_kept_from_reads": stats.rows_kept_from_reads,
            "offered_rows_dropped": stats.offered_rows_dropped,
            "errors": stats.errors,
            "last_error": stats.last_error,
        }

    # ------------------------------------------------------------------ writer thread

    def committed(self, hours: Iterable[int]) -> None:
        """Spans starting in these hours (``start // HOUR_NS``) were committed: each is
        backfilled once it is settled, unless it was already (a late span's trace gets its
        row when a read computes it)."""
        with self._lock:
            self._unsettled.update(hour * HOUR_NS for hour in hours)

    def keep_offered(self, con: Any) -> int:
        """Insert the rows reads offered (one statement); how many were new."""
        with self._lock:
            offered, self._offered, self._offered_rows = self._offered, [], 0
        if not offered:
            return 0
        table = pa.concat_tables(offered, promote_options="permissive")
        try:
            con.register("new_rows", table)
            try:
                kept = int(con.execute(self._sql("trace_shapes_keep")).fetchall()[0][0])
            finally:
                con.unregister("new_rows")
        except Exception as exc:
            self._failed("keeping the computed trace shapes", exc)
            raise
        self.stats.rows_kept_from_reads += kept
        return kept

    def backfill_step(self, con: Any) -> bool:
        """Give the traces of one more part of an hour their rows (in a transaction of its
        own); False when no hour is left."""
        if self._step is None:
            hours = self._hours_to_do(con)
            if not hours:
                return False
            hour = hours.pop(0)
            self.stats.hours_to_do = len(hours)
            self._step = (hour, self._parts_of(con, hour), 0)
        hour, parts, part = self._step
        last = part + 1 == parts
        try:
            con.execute("BEGIN")
            added = con.execute(
                self._sql("trace_shapes_of_hour"),
                {
                    "start": hour,
                    "end": hour + HOUR_NS,
                    "margin": MARGIN_NS,
                    "parts": parts,
                    "part": part,
                },
            ).fetchall()[0][0]
            if last:
                con.execute("INSERT INTO trace_shape_hours VALUES (?)", [hour])
            con.execute("COMMIT")
        except Exception as exc:
            with contextlib.suppress(Exception):  # the error that matters is raised below
                con.execute("ROLLBACK")
            # Not tried again until the store is opened again: a statement that fails on
            # an hour's data would fail at every idle turn (its traces are computed by
            # the reads, as without kept shapes).
            self._done.add(hour)
            self._step = None
            self._failed(f"backfilling the trace shapes of hour {hour}", exc)
            raise
        self.stats.rows_backfilled += int(added)
        self.stats.steps += 1
        if last:
            self._done.add(hour)
            self._step = None
            self.stats.hours_done += 1
        else:
            self._step = (hour, parts, part + 1)
        return True

    def _parts_of(self, con: Any, hour: int) -> int:
        spans = con.execute(
            "SELECT count(*) FROM spans WHERE start_unix_nano >= ? AND start_unix_nano < ?",
            [hour, hour + HOUR_NS],
        ).fetchall()[0][0]
        return max(1, -(-int(spans) // SPANS_PER_STEP))

    def _hours_to_do(self, con: Any) -> list[int]:
        if self._hours is None:
            rows = con.execute(self._sql("trace_shape_hours_to_do")).fetchall()
            self._hours = []
            with self._lock:
                self._unsettled.update(int(row[0]) for row in rows)
        settled_before = self._clock() - SETTLE_NS - HOUR_NS  # the hour ended SETTLE_NS ago
        with self._lock:
            settled = {h for h in self._unsettled if h < settled_before} - self._done
            self._unsettled -= settled | self._done
        if settled:
            self._hours = sorted(set(self._hours) | settled, reverse=True)
        self.stats.hours_to_do = len(self._hours)
        self.stats.hours_settling = len(self._unsettled)
        return self._hours

    def _failed(self, what: str, exc: BaseException) -> None:
        self.stats.errors += 1
        text = str(exc).strip().splitlines()
        self.stats.last_error = f"{what}: {text[0] if text else type(exc).__name__}"
        log.warning("%s", self.stats.last_error)

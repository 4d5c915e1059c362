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
   range, where ``span_frame`` looks for whole traces) and ``failure_report`` analyses
   them: each trace's row depends on its own spans only, so the rows are the same.

The summary's counts are the exact ones of step 1. ``omitted_traces`` (an addition to the
SPEC's shape) counts the failing traces not listed; when it is not 0, ``summary.patterns``
and ``by_service`` describe the listed traces (their pattern and root cause need the
trace's tree). When nothing is omitted the report equals ``failure_report`` over the
range's whole frame (``tests/analyzer/test_failures_store.py``).

The two reads are two statements: spans arriving between them can make a listed trace's
row newer than the counts (never an error counted twice or lost from the counts).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import polars as pl

from analyzer.failures import errors_among, failure_report
from spanstore import SpanReader

__all__ = ["LISTED_TRACES", "store_failure_report"]

#: At most this many failing traces are listed (each is a few hundred bytes of JSON and one
#: tree analysis); the counts always cover every trace of the range.
LISTED_TRACES: Final = 1000

EntitiesFor = Callable[[list[str]], Mapping[str, Mapping[str, Sequence[str]]]]


def failing_traces(candidates: pl.DataFrame) -> pl.DataFrame:
    """One row per trace holding an error among ``candidates`` (``failure_candidates``
    rows): trace_id, root_start, root_error (its root is one of the errors)."""
    return (
        errors_among(candidates)
        .group_by("trace_id")
        .agg(
            pl.col("root_start").first(),
            pl.col("is_root").fill_null(False).any().alias("root_error"),
        )
    )


def listed_trace_ids(failing: pl.DataFrame, limit: int) -> list[str]:
    """The failing traces a report lists: every one up to ``limit``, else the failed
    first, then the newest root start (then the trace id, so the choice is stable)."""
    chosen = failing.sort(
        ["root_error", "root_start", "trace_id"], descending=[True, True, False]
    ).head(max(0, limit))
    ids: list[str] = chosen["trace_id"].to_list()
    return ids


def store_failure_report(
    reader: SpanReader,
    from_unix_nano: int,
    to_unix_nano: int,
    service: str | None = None,
    *,
    entities_for: EntitiesFor | None = None,
    limit: int = LISTED_TRACES,
) -> dict[str, Any]:
    """The ``failures --json`` report for traces whose root starts in [from, to), read
    from ``reader`` (see the module's docstring). ``entities_for(trace_ids)`` gives the
    listed traces' entities (default: ``reader.trace_entities``)."""
    covered, candidates = reader.failure_candidates(from_unix_nano, to_unix_nano, service)
    failing = failing_traces(candidates)
    listed = listed_trace_ids(failing, limit)
    frame = reader.traces_frame(listed, from_unix_nano, to_unix_nano)
    lookup = entities_for or reader.trace_entities
    entities = lookup(listed) if listed else {}
    report = failure_report(frame, entities, from_unix_nano, to_unix_nano, service)
    failed = int(failing["root_error"].sum()) if failing.height else 0
    report["summary"].update(
        traces=covered,
        ok=covered - failing.height,
        partial=failing.height - failed,
        failed=failed,
    )
    report["omitted_traces"] = max(0, failing.height - len(report["traces"]))
    return report

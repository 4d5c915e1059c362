"""The one :class:`~spanstore.SpanReader`: named queries, and what their rows mean.

Every store reads through :class:`StoreReader`; an engine only supplies a dialect
(``spanstore.dialect``): its SQL folder and how to run a named query. Adding a query to
every backend is one ``NAME.sql`` per dialect folder and one method here that runs it
and maps its rows (``spanstore.rows``); ``tests/test_dialects.py`` checks that every
query named here exists in every dialect.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, Final, NamedTuple, TypeVar

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

from spanstore.base import StoreUnavailable
from spanstore.dialect import Dialect
from spanstore.frame import FRAME_SCHEMA, SLO_SPANS_SCHEMA
from spanstore.model import HOUR_NS, EntityKey, EntityValue, Span, StoreStats
from spanstore.query import reader as query_reader
from spanstore.query.ast import Query
from spanstore.rows import (
    collect_entities,
    columns,
    entity_key,
    entity_value,
    frame,
    hex_id,
    references,
    request_from_protobuf_rows,
    request_from_spans,
    slo_spans_frame,
    span_from_columns,
    spans_from_protobuf_rows,
)

__all__ = [
    "FAILURE_CANDIDATES_SCHEMA",
    "FAILURE_PARTS_SCHEMA",
    "FLOW_ROOTS_SCHEMA",
    "FLOW_SHAPES_SCHEMA",
    "RECENT_TRACES_SCHEMA",
    "SERVICE_MAP_SCHEMA",
    "THROUGHPUT_SCHEMA",
    "RowIdRanges",
    "StoreReader",
]

#: flow_root_shapes / flow_trace_shapes (analyzer.flow; the DuckDB files say what they are).
FLOW_SHAPES_SCHEMA: Final[dict[str, pl.DataType]] = {
    "trace_id": pl.String(),
    "start_unix_nano": pl.Int64(),
    "duration_ns": pl.Int64(),
    "outcome": pl.String(),
    "fingerprint": pl.String(),
    "durations": pl.List(pl.Int64()),
    "errors": pl.List(pl.Boolean()),
    "spans": pl.Int64(),
}
FLOW_ROOTS_SCHEMA: Final[dict[str, pl.DataType]] = {
    "service": pl.String(),
    "operation": pl.String(),
    "traces": pl.Int64(),
    "failed": pl.Int64(),
}

#: A span that may be an error, in the span frame's spellings (failure_candidates and
#: failure_parts rows).
_POSSIBLE_ERROR: Final[dict[str, pl.DataType]] = {
    "span_id": pl.String(),
    "service_name": pl.String(),
    "kind": pl.String(),
    "status_code": pl.String(),
    "status_message": pl.String(),
    "exception_type": pl.String(),
    "exception_message": pl.String(),
    "http_status_code": pl.Int64(),
}

#: failure_candidates: the spans that may be errors of the traces a failure report covers,
#: in the span frame's spellings, each with whether it is its trace's root, when that root
#: starts and its trace's fingerprint (the DuckDB file says what the rows are).
FAILURE_CANDIDATES_SCHEMA: Final[dict[str, pl.DataType]] = {
    "trace_id": pl.String(),
    **_POSSIBLE_ERROR,
    "is_root": pl.Boolean(),
    "root_start": pl.Int64(),
    "trace_spans": pl.Int64(),
    "first_start": pl.Int64(),
    "last_start": pl.Int64(),
    "span_hash": pl.UInt64(),
}

#: failure_parts / failure_parts_of (the DuckDB files say what the rows are).
FAILURE_PARTS_SCHEMA: Final[dict[str, pl.DataType]] = {
    "row_kind": pl.String(),
    "trace_id": pl.String(),
    "stored": pl.Boolean(),
    "rooted_start": pl.Int64(),
    "rooted_id": pl.String(),
    "first_start": pl.Int64(),
    "first_id": pl.String(),
    "last_start": pl.Int64(),
    "trace_spans": pl.Int64(),
    "span_hash": pl.UInt64(),
    "first_rowid": pl.Int64(),
    "last_rowid": pl.Int64(),
    **_POSSIBLE_ERROR,
    "next_rowid": pl.Int64(),
}


def split_failure_parts(rows: pl.DataFrame, default_next: int) -> tuple[int, pl.DataFrame]:
    """(the row id the next count starts at, the parts rows) of failure_parts* rows: their
    ``position`` row says where the count stopped (``default_next`` when there is none)."""
    position = rows.filter(pl.col("row_kind") == "position")["next_rowid"]
    next_rowid = int(position[0]) if len(position) and position[0] is not None else default_next
    return next_rowid, rows.filter(pl.col("row_kind") != "position")


class RowIdRanges(NamedTuple):
    """Where some traces' committed spans lie, by row id: within ``ranges`` (at most
    three, each [first, last]) or from ``tail`` on."""

    tail: int
    ranges: tuple[tuple[int, int], ...]


THROUGHPUT_SCHEMA: Final[dict[str, pl.DataType]] = {
    "bucket_unix_nano": pl.Int64(),
    "spans": pl.Int64(),
    "errors": pl.Int64(),
}
#: One row of the service map's figures (service_map.sql).
SERVICE_MAP_SCHEMA: Final[dict[str, pl.DataType]] = {
    "row": pl.String(),
    "from_id": pl.String(),
    "to_id": pl.String(),
    "kind": pl.String(),
    "calls": pl.Int64(),
    "errors": pl.Int64(),
    "median_ns": pl.Float64(),
}
RECENT_TRACES_SCHEMA: Final[dict[str, pl.DataType]] = {
    "trace_id": pl.String(),
    "service_name": pl.String(),
    "name": pl.String(),
    "start_unix_nano": pl.Int64(),
    "duration_ns": pl.Int64(),
    "status_code": pl.String(),
    "spans": pl.Int64(),
    "errors": pl.Int64(),
}

_T = TypeVar("_T")


def _extents(table: pa.Table) -> list[tuple[str, int, int, int]]:
    """Rows of the replay_* extent queries: (trace id hex, first start, last end, spans)."""
    return [
        (hex_id(tid), int(first), int(last), int(spans))
        for tid, first, last, spans in columns(
            table, "trace_id", "first_start", "last_end", "spans"
        )
    ]


def _chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class StoreReader:
    """SpanReader over a dialect. A store sets ``_dialect`` (and ``_closed``)."""

    _dialect: Dialect
    _closed: bool = False

    # ------------------------------------------------------------------ primitives

    def _table(self, name: str, params: Mapping[str, object] | None = None) -> pa.Table:
        if self._closed:
            raise StoreUnavailable("the store is closed")
        return self._dialect.table(name, params or {})

    def _since(self, unix_nano: int | None) -> int:
        return self._dialect.far_past if unix_nano is None else self._dialect.clamp(unix_nano)

    def _until(self, unix_nano: int | None) -> int:
        return self._dialect.far_future if unix_nano is None else self._dialect.clamp(unix_nano)

    def _around(self, start: int, end: int, margin: int) -> dict[str, object]:
        """A range and the range ``margin`` wider on each side (where whole traces are
        searched): ``$start``/``$end`` with ``$margin``, or ``$lo``/``$hi``."""
        clamp = self._dialect.clamp
        return {
            "start": clamp(start),
            "end": clamp(end),
            "margin": margin,
            "lo": clamp(start - margin),
            "hi": clamp(end + margin),
        }

    def _id_tables(self, name: str, ids: Sequence[Any], **params: object) -> list[pa.Table]:
        """The named query over ``$trace_ids``, as many times as the dialect splits them."""
        dialect = self._dialect
        return [
            self._table(name, {"trace_ids": dialect.id_set(chunk), **params})
            for chunk in _chunks(ids, dialect.ids_per_query)
        ]

    # ------------------------------------------------------------------ SpanReader

    #: The last ``stats`` answer and the data version (``data_versions`` over all time)
    #: taken before it was computed: the overview asks again and again, mostly while
    #: nothing was written. A write marks the version before it is acknowledged, so a
    #: kept answer never hides an acknowledged span.
    _kept_stats: tuple[int, StoreStats] | None = None

    def stats(self) -> StoreStats:
        dialect = self._dialect
        versions = self.data_versions([(dialect.far_past, dialect.far_future)])
        version = None if versions is None else versions[0]
        kept = self._kept_stats
        if version is not None and kept is not None and kept[0] == version:
            return replace(kept[1], services=list(kept[1].services))
        row = self._table("stats").to_pylist()[0]
        spans = int(row["spans"] or 0)
        stats = StoreStats(
            spans=spans,
            traces=int(row["traces"] or 0),
            services=self._table("services").column(0).to_pylist(),
            first_unix_nano=row["first_unix_nano"] if spans else None,
            last_unix_nano=row["last_unix_nano"] if spans else None,
        )
        if version is not None:
            self._kept_stats = (version, replace(stats, services=list(stats.services)))
        return stats

    def entity_keys(self, limit: int = 100) -> list[EntityKey]:
        return [entity_key(r) for r in self._table("entity_keys", {"limit": limit}).to_pylist()]

    def entity_values(
        self,
        key: str,
        limit: int = 100,
        start_unix_nano: int | None = None,
        end_unix_nano: int | None = None,
        prefix: str | None = None,
    ) -> list[EntityValue]:
        params: dict[str, object] = {
            "key": key,
            "limit": limit,
            "start": self._since(start_unix_nano),
            "end": self._until(end_unix_nano),
            "prefix": prefix or "",
        }
        return [entity_value(r) for r in self._table("entity_values", params).to_pylist()]

    def entity_traces(
        self,
        key: str,
        value: str,
        start_unix_nano: int | None = None,
        end_unix_nano: int | None = None,
    ) -> list[tuple[str, int]]:
        """Like :meth:`entity_trace_ids`, with the time the entity first appears in each."""
        params: dict[str, object] = {
            "key": key,
            "value": value,
            "start": self._since(start_unix_nano),
            "end": self._until(end_unix_nano),
        }
        table = self._table("entity_trace_ids", params)
        return [(hex_id(t), int(first)) for t, first in columns(table, "trace_id", "first_start")]

    def entity_trace_ids(
        self,
        key: str,
        value: str,
        start_unix_nano: int | None = None,
        end_unix_nano: int | None = None,
    ) -> list[str]:
        """Traces with a span whose span or resource attributes carry key=value, oldest first."""
        return [t for t, _ in self.entity_traces(key, value, start_unix_nano, end_unix_nano)]

    def entity_traces_in_range(
        self, key: str, start_unix_nano: int, end_unix_nano: int
    ) -> list[tuple[Any, ...]]:
        """(value, trace_id, trace_start, shape, span_ids) per trace of every entity of
        ``key`` with a span in the range; ``shape`` hashes the trace's span tree, so
        entities that did the same thing can share one diagram (analyzer.contracts). A
        dialect without the query answers per value: own traces, then linked ones, with
        no shapes (each entity's diagram is built on its own)."""
        if not self._dialect.has_query("entity_traces_in_range"):
            rows: list[tuple[Any, ...]] = []
            for entry in self.entity_values(key, 1_000_000, start_unix_nano, end_unix_nano):
                own = self.entity_traces(key, entry.value, start_unix_nano, end_unix_nano)
                rows += [(entry.value, tid, first, None, ()) for tid, first in own]
                linked = self.linked_trace_ids([tid for tid, _ in own])
                rows += [(entry.value, tid, 0, None, ()) for tid in linked]
            return rows
        params: dict[str, object] = {"key": key, "start": start_unix_nano, "end": end_unix_nano}
        table = self._table("entity_traces_in_range", params)
        return [
            (value, trace_id, int(trace_start), shape, tuple(span_ids))
            for value, trace_id, trace_start, shape, span_ids in columns(
                table, "value", "trace_id", "trace_start", "shape", "span_ids"
            )
        ]

    def linked_trace_ids(self, trace_ids: Sequence[str]) -> list[str]:
        """Traces joined to these by span links, in either direction (one hop)."""
        ids = self._dialect.trace_ids(trace_ids)
        if not ids:
            return []
        found: set[Any] = set()
        for table in self._id_tables("linked_trace_ids", ids):
            found.update(table.column(0).to_pylist())
        found -= {None, "", b"", *ids}
        return sorted(hex_id(t) for t in found)

    def spans(
        self,
        trace_ids: Iterable[str],
        *,
        start_unix_nano: int | None = None,
        end_unix_nano: int | None = None,
    ) -> list[Span]:
        """Every stored span of these traces, ordered by start time.

        The optional bounds say where the spans can be (a hint that makes the lookup
        fast on big stores); spans starting outside them are not returned.
        """
        ids = sorted(set(self._dialect.trace_ids(trace_ids)))  # type: ignore[type-var]
        if not ids:
            return []
        bounds = {"lo": self._since(start_unix_nano), "hi": self._until(end_unix_nano)}
        tables = self._id_tables("spans_of_traces", ids, **bounds)
        if self._dialect.span_layout == "columns":
            out = [span_from_columns(row) for table in tables for row in table.to_pylist()]
        else:
            rows = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
            out = spans_from_protobuf_rows(rows, self._references(rows))
        if len(tables) > 1:  # each query's rows are in order, not all of them
            out.sort(key=lambda s: (s.start_unix_nano, s.span_id))
        return out

    def _references(self, rows: pa.Table) -> Any:
        if not rows.num_rows:
            return {}, {}
        ids = {
            "resource_ids": sorted(set(rows.column("resource_id").to_pylist())),
            "scope_ids": sorted(set(rows.column("scope_id").to_pylist())),
        }
        return references(self._table("refs_by_id", ids))

    def trace_request(self, trace_id: str) -> ExportTraceServiceRequest | None:
        """The trace as an OTLP request, exactly as stored (lossless); None if unknown."""
        if self._dialect.span_layout == "columns":  # not kept as sent: rebuilt from spans
            spans = self.spans([trace_id])
            return request_from_spans(spans) if spans else None
        ids = self._dialect.trace_ids([trace_id])
        if not ids:
            return None
        params: dict[str, object] = {
            "trace_id": ids[0],
            "trace_ids": self._dialect.id_set(ids[:1]),
            "lo": self._dialect.far_past,
            "hi": self._dialect.far_future,
        }
        rows = self._table("trace_rows", params)
        if not rows.num_rows:
            return None
        return request_from_protobuf_rows(rows, self._references(rows))

    # -- replay (`seqtrace replay`): which traces, then their spans a chunk at a time

    def replay_range_traces(
        self, start_unix_nano: int, end_unix_nano: int, reach_ns: int
    ) -> list[tuple[str, int, int, int]]:
        """(trace id, first span start, last span end, spans) of each trace with a span
        starting in [start, end), oldest first; its spans are looked for within
        ``reach_ns`` of the range."""
        if not self._dialect.has_query("replay_range_traces"):
            raise StoreUnavailable("this store cannot list a time range's traces for a replay")
        params = self._around(start_unix_nano, end_unix_nano, reach_ns)
        return _extents(self._table("replay_range_traces", params))

    def replay_trace_extents(self, trace_ids: Sequence[str]) -> list[tuple[str, int, int, int]]:
        """(trace id, first span start, last span end, spans) of each known trace, oldest
        first."""
        ids = self._dialect.trace_ids(trace_ids)
        if not ids:
            return []
        if not self._dialect.has_query("replay_trace_extents"):  # spans as columns
            found = []
            for trace_id in trace_ids:
                spans = self.spans([trace_id])
                if spans:
                    first = min(s.start_unix_nano for s in spans)
                    last = max(s.end_unix_nano for s in spans)
                    found.append((spans[0].trace_id, first, last, len(spans)))
            return sorted(found, key=lambda row: (row[1], row[0]))
        params = {"lo": self._dialect.far_past, "hi": self._dialect.far_future}
        rows = [
            row
            for table in self._id_tables("replay_trace_extents", ids, **params)
            for row in _extents(table)
        ]
        return sorted(rows, key=lambda row: (row[1], row[0]))

    def replay_requests(
        self,
        trace_ids: Sequence[str],
        start_unix_nano: int,
        end_unix_nano: int,
        max_spans: int = 512,
    ) -> list[ExportTraceServiceRequest]:
        """Every span of these traces starting in [start, end] as OTLP requests of at most
        ``max_spans`` spans, exactly as stored (the bounds, the traces' extent, make the
        lookup cheap)."""
        if not self._dialect.has_query("replay_traces_rows"):  # spans as columns
            found = (self.trace_request(t) for t in trace_ids)
            return [request for request in found if request is not None]
        ids = self._dialect.trace_ids(trace_ids)
        if not ids:
            return []
        params = {
            "lo": self._dialect.clamp(start_unix_nano),
            "hi": self._dialect.clamp(end_unix_nano),
        }
        requests: list[ExportTraceServiceRequest] = []
        for rows in self._id_tables("replay_traces_rows", ids, **params):
            refs = self._references(rows)
            for offset in range(0, rows.num_rows, max_spans):
                requests.append(request_from_protobuf_rows(rows.slice(offset, max_spans), refs))
        return requests

    def span_frame(
        self,
        start_unix_nano: int,
        end_unix_nano: int,
        service: str | None = None,
        whole_traces: bool = True,
    ) -> pl.DataFrame:
        """Spans starting in [start, end) as a frame (``spanstore.frame.FRAME_SCHEMA``).

        With ``whole_traces`` the frame holds every span of each trace that has a span in
        the range, so trees are complete. ``service`` keeps traces that touch that service.
        """
        params = self._around(start_unix_nano, end_unix_nano, HOUR_NS if whole_traces else 0)
        params |= {"service": service, "whole_traces": whole_traces}
        return frame(self._table("span_frame", params), FRAME_SCHEMA)

    def failure_candidates(
        self, start_unix_nano: int, end_unix_nano: int, service: str | None = None
    ) -> tuple[int, pl.DataFrame]:
        """(how many traces have their root in [start, end) (with ``service``: of those
        with a span of it there), the spans of theirs that may be errors as
        FAILURE_CANDIDATES_SCHEMA): the failure report's counts without the range's spans.
        Whole traces are searched within an hour of the range, as ``span_frame`` does."""
        params = self._around(start_unix_nano, end_unix_nano, HOUR_NS)
        params |= {"service": service}
        table = self._table("failure_candidates", params)
        if not table.num_rows:
            return 0, pl.DataFrame(schema=FAILURE_CANDIDATES_SCHEMA)
        traces = int(table.column("traces")[0].as_py() or 0)
        rows = frame(table, FAILURE_CANDIDATES_SCHEMA).filter(pl.col("trace_id").is_not_null())
        return traces, rows

    def failure_traces(self, start_unix_nano: int, end_unix_nano: int) -> pl.DataFrame | None:
        """``failure_candidates``' rows (no service) for every covered trace, a trace
        without a possible error as one row whose span columns are null (what the kept
        counts of ``failure_parts`` give, counted in one statement). None when the
        dialect does not answer it."""
        if not self._dialect.has_query("failure_traces"):
            return None
        params = self._around(start_unix_nano, end_unix_nano, HOUR_NS) | {"service": None}
        return frame(self._table("failure_traces", params), FAILURE_CANDIDATES_SCHEMA)

    def failure_parts(
        self,
        start_unix_nano: int,
        end_unix_nano: int,
        since_rowid: int = 0,
        trace_ids: Sequence[bytes] | None = None,
        next_rowid: int = 0,
    ) -> tuple[int, pl.DataFrame] | None:
        """(the row id to start the next call at, FAILURE_PARTS_SCHEMA rows): the failure
        report's per-trace counts and possible errors over the spans within an hour of
        [start, end) that were committed at row id ``since_rowid`` or later or are not
        committed yet; with ``trace_ids``, every span of those traces (committed rows
        from ``next_rowid`` on are not ``stored``). None when the dialect does not answer
        it (row ids: DuckDB's own store only)."""
        if not self._dialect.has_query("failure_parts"):
            return None
        bounds = self._around(start_unix_nano, end_unix_nano, HOUR_NS)
        if trace_ids is None:
            params = {"lo": bounds["lo"], "hi": bounds["hi"], "since": since_rowid}
            tables = [self._table("failure_parts", params)]
        else:
            ids = sorted(set(trace_ids))
            params = {"lo": bounds["lo"], "hi": bounds["hi"], "next": next_rowid}
            tables = self._id_tables("failure_parts_of", ids, **params)
            if not tables:
                return next_rowid, pl.DataFrame(schema=FAILURE_PARTS_SCHEMA)
        rows = pl.concat([frame(table, FAILURE_PARTS_SCHEMA) for table in tables])
        return split_failure_parts(rows, next_rowid)

    def logged_failure_parts(
        self, start_unix_nano: int, end_unix_nano: int, since_rowid: int
    ) -> tuple[int, pl.DataFrame, list[bytes]] | None:
        """``failure_parts`` of the spans committed from row id ``since_rowid`` on, from
        the counts this store's writer kept of each commit (spanstore/failure_parts_log.py)
        instead of the store: (the row id after them, the ``stored`` rows of the traces
        whose counted spans all lie within an hour of [start, end), the ids (as stored)
        of the others: the writer counted every start time, so those are counted again
        whole). None when the writer kept none from there (``failure_parts`` reads them)."""
        logged = self._logged_failure_parts(since_rowid)
        if logged is None:
            return None
        next_rowid, rows = logged
        clamp = self._dialect.clamp
        lo, hi = clamp(start_unix_nano - HOUR_NS), clamp(end_unix_nano + HOUR_NS)  # _around's
        outside = (pl.col("first_start") < lo) | (pl.col("last_start") >= hi)
        found = rows.filter((pl.col("row_kind") == "trace") & outside)["trace_id"]
        beyond = found.unique().to_list()
        if not beyond:
            return next_rowid, rows, []
        inside = rows.filter(~pl.col("trace_id").is_in(beyond))
        return next_rowid, inside, sorted(bytes.fromhex(trace_id) for trace_id in beyond)

    def _logged_failure_parts(self, since_rowid: int) -> tuple[int, pl.DataFrame] | None:
        """The store's hook for ``logged_failure_parts``: (the row id after them, its kept
        rows from ``since_rowid`` on); None: it kept none from there (the default)."""
        return None

    def watch_failure_parts(self, next_rowid: int, needed_from: int | None = None) -> None:
        """A report's kept counts end at ``next_rowid``: a store that can, counts each
        commit from there for the next reports (``logged_failure_parts``). ``needed_from``:
        no kept counts end before this row id, so the counts of commits before it may go."""

    def trace_ids_starting_in(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """The ids (as stored) of the traces with a span starting in one of the
        [start, end) ranges (up to three)."""
        clamp = self._dialect.clamp
        wanted = [(clamp(start), clamp(end)) for start, end in ranges if end > start]
        if not wanted:
            return []
        if len(wanted) > 3:
            raise ValueError("at most three ranges")
        (a_from, a_to), (b_from, b_to), (c_from, c_to) = wanted + [(0, 0)] * (3 - len(wanted))
        bounds = {
            "a_from": a_from,
            "a_to": a_to,
            "b_from": b_from,
            "b_to": b_to,
            "c_from": c_from,
            "c_to": c_to,
        }
        return sorted(self._table("trace_ids_starting_in", bounds).column(0).to_pylist())

    def traces_frame(
        self,
        trace_ids: Sequence[str],
        start_unix_nano: int,
        end_unix_nano: int,
        rowids: RowIdRanges | None = None,
    ) -> pl.DataFrame:
        """The span frame of these traces: their spans within an hour of [start, end)
        (where ``span_frame`` looks for whole traces). ``rowids``: where their committed
        spans lie (``failure_parts``' ``first_rowid`` and ``last_rowid``), so the other
        row groups are not read, where the dialect has row ids."""
        ids = sorted(set(self._dialect.trace_ids(trace_ids)))  # type: ignore[type-var]
        if not ids:
            return pl.DataFrame(schema=FRAME_SCHEMA)
        bounds = self._around(start_unix_nano, end_unix_nano, HOUR_NS)
        lo, hi = bounds["lo"], bounds["hi"]
        if rowids is not None and self._dialect.has_query("traces_frame_since"):
            (a, a_to), (b, b_to), (c, c_to) = (*rowids.ranges, (1, 0), (1, 0), (1, 0))[:3]
            since = {
                "lo": lo,
                "hi": hi,
                "tail": rowids.tail,
                "a_from": a,
                "a_to": a_to,
                "b_from": b,
                "b_to": b_to,
                "c_from": c,
                "c_to": c_to,
            }
            tables = self._id_tables("traces_frame_since", ids, **since)
        else:
            tables = self._id_tables("traces_frame", ids, lo=lo, hi=hi)
        frames = [frame(table, FRAME_SCHEMA) for table in tables]
        return pl.concat(frames) if len(frames) > 1 else frames[0]

    def slo_spans(
        self,
        start_unix_nano: int,
        end_unix_nano: int,
        services: Sequence[str],
        operations: Sequence[str],
    ) -> pl.DataFrame:
        """What an SLO report reads, narrow (``spanstore.frame.SLO_SPANS_SCHEMA``): the
        spans of ``services`` starting in the range whose name, ``http_route``,
        ``rpc_method``, "METHOD route" or "service/method" is one of ``operations``, as
        candidate events (``event`` true, trace ids in hex), plus (``event`` false) every
        span starting within an hour (``model.HOUR_NS``) of the range of each
        trace where a candidate shares its trace with a span whose status is ERROR or
        whose HTTP code is >= 400, keyed for the error ancestry. Rows in no order."""
        if not services or not operations:
            return pl.DataFrame(schema=SLO_SPANS_SCHEMA)
        params = self._around(start_unix_nano, end_unix_nano, HOUR_NS)
        params |= {"services": list(services), "operations": list(operations)}
        return slo_spans_frame(self._table("slo_spans", params))

    def data_versions(self, ranges: Sequence[tuple[int, int]]) -> list[int] | None:
        """For each (start, end) range, a number that changes whenever spans starting in
        it are stored or deleted, for readers that keep results per time range; None when
        this reader cannot tell (keep nothing). Take them before the query whose result
        they label: all at once, since each call first waits for acknowledged writes."""
        return None  # a store other processes write to cannot tell

    def last_unix_nano(self) -> int | None:
        """When the newest stored span ended (cheap; None for an empty store)."""
        value = self._table("last_span_end").column(0)[0].as_py()
        return None if value is None else int(value)

    def trace_entities(
        self,
        trace_ids: Sequence[str],
        start_unix_nano: int | None = None,
        end_unix_nano: int | None = None,
    ) -> dict[str, dict[str, list[str]]]:
        """trace_id -> entity key -> sorted distinct values; with both bounds, of their
        spans starting in [start, end) only."""
        if start_unix_nano is not None and end_unix_nano is not None:
            return self._entities_between(trace_ids, start_unix_nano, end_unix_nano - 1)
        ids = sorted(set(self._dialect.trace_ids(trace_ids)))  # type: ignore[type-var]
        found: dict[str, dict[str, list[str]]] = {}
        for table in self._id_tables("trace_entities", ids):  # ordered by (trace_id, key)
            collect_entities(table, found)
        return found

    # ------------------------------------------------ the query language (#17)
    # The statements are compiled (spanstore.query.compiler) rather than named files; the
    # dialect runs them (``run_compiled``). Named here: the few fixed lookups around them.

    def query_backend(self) -> _QueryBackend:
        return _QueryBackend(self)

    def query_trace_ids(self, query: Query, start_unix_nano: int, end_unix_nano: int) -> list[str]:
        """Ids of the traces with a span in [start, end) that the query selects, sorted."""
        return query_reader.query_trace_ids(
            self.query_backend(), query, start_unix_nano, end_unix_nano
        )

    def find_traces(
        self, query: Query, start_unix_nano: int, end_unix_nano: int, limit: int
    ) -> tuple[int, list[dict[str, Any]]]:
        """(traces matching, the newest ``limit`` as SPEC ``find`` rows)."""
        return query_reader.find_traces(
            self.query_backend(), query, start_unix_nano, end_unix_nano, limit
        )

    def sample_spans(
        self,
        query: Query,
        start_unix_nano: int,
        end_unix_nano: int,
        sample: int,
        complement: bool = False,
    ) -> tuple[int, list[query_reader.SampledSpan]]:
        """(spans matching, a fixed pseudo-random sample of them decoded); with
        ``complement``, of the other spans in the range."""
        return query_reader.sample_spans(
            self.query_backend(), query, start_unix_nano, end_unix_nano, sample, complement
        )

    def trace_ids_with_prefix(self, prefix: str, limit: int = 10) -> list[str]:
        """Stored trace ids starting with the hex ``prefix``, at most ``limit``."""
        low, high = query_reader.prefix_bounds(prefix)
        params: dict[str, object] = {
            "lo": low,
            "hi": high,
            "prefix": prefix.lower(),
            "limit": limit,
        }
        table = self._table("trace_ids_by_prefix", params)
        return [hex_id(t) for t in table.column(0).to_pylist()]

    def _query_resources(self) -> dict[int, dict[str, Any]] | None:
        if not self._dialect.has_query("query_resources"):
            return None  # otel_traces: attribute maps, read in SQL
        rows = self._table("query_resources").to_pylist()
        return query_reader.decode_resources(rows)

    def _entities_between(
        self, trace_ids: Sequence[str], lo: int, hi: int
    ) -> dict[str, dict[str, list[str]]]:
        if not self._dialect.has_query("trace_entities_in_range"):
            return self.trace_entities(trace_ids)
        ids = sorted(set(self._dialect.trace_ids(trace_ids)))  # type: ignore[type-var]
        found: dict[str, dict[str, list[str]]] = {}
        bounds = {"lo": self._dialect.clamp(lo), "hi": self._dialect.clamp(hi)}
        for table in self._id_tables("trace_entities_in_range", ids, **bounds):
            collect_entities(table, found)
        return found

    def throughput(self, start_unix_nano: int, end_unix_nano: int, bucket_ns: int) -> pl.DataFrame:
        """Columns bucket_unix_nano, spans, errors: span counts per time bucket."""
        params: dict[str, object] = {
            "start": self._dialect.clamp(start_unix_nano),
            "end": self._dialect.clamp(end_unix_nano),
            "bucket": max(1, bucket_ns),
        }
        return frame(self._table("throughput", params), THROUGHPUT_SCHEMA)

    def service_map(
        self, start_unix_nano: int, end_unix_nano: int, cancel_type: str, cancel_message: str
    ) -> pl.DataFrame | None:
        """The service map's figures of the spans starting in the range, aggregated in the
        store (SERVICE_MAP_SCHEMA: rows 'edge', 'peer', 'service'; service_map.sql), a
        cancellation matching the patterns being no error; None when the dialect has no
        such query (analyzer.servicemap then aggregates the span frame)."""
        if not self._dialect.has_query("service_map"):
            return None
        params: dict[str, object] = {
            "start": self._dialect.clamp(start_unix_nano),
            "end": self._dialect.clamp(end_unix_nano),
            "cancel_type": cancel_type,
            "cancel_message": cancel_message,
        }
        return frame(self._table("service_map", params), SERVICE_MAP_SCHEMA)

    def recent_traces(self, limit: int = 50) -> pl.DataFrame:
        """The newest root spans: trace_id, service_name, name, start_unix_nano,
        duration_ns, status_code, spans."""
        return frame(self._table("recent_traces", {"limit": limit}), RECENT_TRACES_SCHEMA)

    # ------------------------------------------------------------------ flows (#16)

    def flow_root_shapes(
        self, service: str, operation: str, start_unix_nano: int, end_unix_nano: int
    ) -> pl.DataFrame | None:
        """Per trace whose root is ``service``'s ``operation`` starting in the range
        (FLOW_SHAPES_SCHEMA, ``spans`` null): its outcome, duration, structure fingerprint
        and per-span durations and error flags in start order; None when the dialect has
        no such query (analyzer.flow then folds span objects)."""
        if not self._dialect.has_query("flow_root_shapes"):
            return None
        params = self._around(start_unix_nano, end_unix_nano, HOUR_NS)
        params |= {"service": service, "operation": operation}
        table = self._table("flow_root_shapes", params)
        if "spans" not in table.column_names:
            table = table.append_column("spans", pa.nulls(table.num_rows, pa.int64()))
        return frame(table, FLOW_SHAPES_SCHEMA)

    def flow_trace_shapes(
        self,
        trace_ids: Sequence[str],
        start_unix_nano: int | None = None,
        end_unix_nano: int | None = None,
    ) -> pl.DataFrame | None:
        """``flow_root_shapes``'s rows (with ``spans``) for the given traces; None when
        the dialect has no such query."""
        found = self._flow_trace_shapes(trace_ids, start_unix_nano, end_unix_nano, None)
        return None if found is None else found[0]

    def flow_trace_shapes_and_spans(
        self,
        trace_ids: Sequence[str],
        *,
        failing: bool = False,
        whole_spans: int = 0,
    ) -> tuple[pl.DataFrame, list[Span]] | None:
        """``flow_trace_shapes`` and, from the same search of the store, the spans of the
        traces a fold turns into span objects (in ``spans``' order): the first trace of
        each fingerprint and every trace without one; with ``failing`` every trace with
        an error span; every trace when they hold at most ``whole_spans`` spans."""
        return self._flow_trace_shapes(trace_ids, None, None, (failing, whole_spans))

    def _flow_trace_shapes(
        self,
        trace_ids: Sequence[str],
        start_unix_nano: int | None,
        end_unix_nano: int | None,
        spans_of: tuple[bool, int] | None,
    ) -> tuple[pl.DataFrame, list[Span]] | None:
        if not self._dialect.has_query("flow_trace_shapes"):
            return None
        ids = sorted(set(self._dialect.trace_ids(trace_ids)))  # type: ignore[type-var]
        params: dict[str, object] = {
            "lo": self._since(start_unix_nano),
            "hi": self._until(end_unix_nano),
            "with_spans": spans_of is not None,
            "failing_spans": spans_of is not None and spans_of[0],
            "whole_spans": spans_of[1] if spans_of is not None else 0,
        }
        tables = self._id_tables("flow_trace_shapes", ids, **params)
        for table in tables:
            if "kept" in table.column_names:  # a dialect that keeps shapes: offer the new
                computed = table.drop_columns(["span_rows"]).filter(pc.invert(table.column("kept")))
                if computed.num_rows:
                    self.offer_trace_shapes(computed)
        frames = [frame(t, FLOW_SHAPES_SCHEMA) for t in tables]
        if not frames:
            return pl.DataFrame(schema=FLOW_SHAPES_SCHEMA), []
        spans: list[Span] = []
        if spans_of is not None:
            stored = pa.chunked_array(
                [c for t in tables for c in t.column("span_rows").chunks],
                type=tables[0].schema.field("span_rows").type,
            )
            fields = pc.list_flatten(stored)
            names = [fields.type.field(i).name for i in range(fields.type.num_fields)]
            rows = pa.Table.from_arrays(fields.flatten(), names=names)
            spans = spans_from_protobuf_rows(rows, self._references(rows))
            spans.sort(key=lambda s: (s.start_unix_nano, s.span_id))
        return pl.concat(frames).sort("start_unix_nano", "trace_id"), spans

    def offer_trace_shapes(self, rows: pa.Table) -> None:
        """Trace shapes a read computed (``flow_trace_shapes`` rows with ``kept`` false and
        ``start_check``), for a store that keeps them (DuckDB: spanstore/trace_shapes.py);
        others ignore them."""

    def flow_root_operations(
        self, start_unix_nano: int, end_unix_nano: int, limit: int = 200
    ) -> pl.DataFrame | None:
        """service, operation, traces, failed per root operation starting in the range,
        busiest first; None when the dialect has no such query."""
        if not self._dialect.has_query("flow_root_operations"):
            return None
        params: dict[str, object] = {
            "start": self._dialect.clamp(start_unix_nano),
            "end": self._dialect.clamp(end_unix_nano),
            "limit": limit,
        }
        return frame(self._table("flow_root_operations", params), FLOW_ROOTS_SCHEMA)


class _QueryBackend:
    """spanstore.query's view of a reader: its dialect's compiled-SQL target and runner."""

    def __init__(self, reader: StoreReader) -> None:
        self._reader = reader
        self.target = reader._dialect.query_target  # type: ignore[attr-defined]

    def run(self, statement: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        if self._reader._closed:
            raise StoreUnavailable("the store is closed")
        run_compiled = self._reader._dialect.run_compiled  # type: ignore[attr-defined]
        rows: list[dict[str, Any]] = run_compiled(statement, params).to_pylist()
        for row in rows:
            for key in ("span_attributes", "resource_attributes"):
                if isinstance(row.get(key), list):
                    row[key] = dict(row[key])
        return rows

    def resources(self) -> dict[int, dict[str, Any]] | None:
        return self._reader._query_resources()

    def trace_entities(
        self, trace_ids: Sequence[str], lo: int, hi: int
    ) -> dict[str, dict[str, list[str]]]:
        return self._reader._entities_between(trace_ids, lo, hi)

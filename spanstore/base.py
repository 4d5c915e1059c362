"""The storage interface: one write path and one read path, free of any engine's types.

The collector writes through :class:`SpanWriter`; the analyzer reads through
:class:`SpanReader`. Every store reads through one implementation,
:class:`spanstore.reader.StoreReader`, over its engine's dialect (``spanstore.dialect``):
DuckDB (``spanstore.duckdb_store``) and ClickHouse (``spanstore.clickhouse_store``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from spanstore.model import EntityKey, EntityValue, Span, StoreStats

if TYPE_CHECKING:  # imported for annotations only: decoder processes stay small and quick
    import polars as pl
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    from spanstore.query.ast import Query
    from spanstore.query.reader import SampledSpan


class StoreError(Exception):
    """A storage failure. ``retryable`` tells receivers whether a client should try again."""

    retryable: bool = True


class StoreUnavailable(StoreError):
    """The store cannot be opened or written now (lock held, disk full, shutting down)."""


class QueryTimeout(StoreError):
    """A read ran past its deadline (``spanstore.deadline``) and was interrupted."""


class InvalidRequest(StoreError):
    """The request itself is malformed (not a valid ExportTraceServiceRequest)."""

    retryable = False


class SchemaVersionError(StoreError):
    """The database file was written by another, incompatible version of seqtrace."""

    retryable = False


@dataclass(frozen=True, slots=True)
class WriteResult:
    accepted: int
    rejected: int = 0
    duplicates: int = 0
    messages: tuple[str, ...] = field(default_factory=tuple)


@runtime_checkable
class SpanWriter(Protocol):
    def write(
        self, request: ExportTraceServiceRequest | bytes, timeout: float | None = None
    ) -> WriteResult:
        """Store a request's valid spans; returns only once they are durable (the ingest
        journal's fsync covers them, or the engine acknowledged the insert).

        ``request`` may be the serialized protobuf: the store then parses it where it is
        cheapest (a decoder process), and raises :class:`InvalidRequest` if it is malformed.
        """
        ...

    def close(self) -> None: ...


@runtime_checkable
class SpanReader(Protocol):
    def stats(self) -> StoreStats: ...

    def entity_keys(self, limit: int = 100) -> list[EntityKey]: ...

    def entity_values(
        self,
        key: str,
        limit: int = 100,
        start_unix_nano: int | None = None,
        end_unix_nano: int | None = None,
        prefix: str | None = None,
    ) -> list[EntityValue]: ...

    def entity_trace_ids(
        self,
        key: str,
        value: str,
        start_unix_nano: int | None = None,
        end_unix_nano: int | None = None,
    ) -> list[str]:
        """Traces with a span whose span or resource attributes carry key=value, oldest first."""
        ...

    def entity_traces(
        self,
        key: str,
        value: str,
        start_unix_nano: int | None = None,
        end_unix_nano: int | None = None,
    ) -> list[tuple[str, int]]:
        """Like :meth:`entity_trace_ids`, with the time the entity first appears in each."""
        ...

    def linked_trace_ids(self, trace_ids: Sequence[str]) -> list[str]:
        """Traces joined to these by span links, in either direction (one hop)."""
        ...

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
        ...

    def trace_request(self, trace_id: str) -> ExportTraceServiceRequest | None:
        """The trace as an OTLP request, exactly as stored (lossless); None if unknown."""
        ...

    def replay_range_traces(
        self, start_unix_nano: int, end_unix_nano: int, reach_ns: int
    ) -> list[tuple[str, int, int, int]]:
        """`seqtrace replay --from --to`: (trace id, first span start, last span end, spans)
        of each trace with a span starting in the range, oldest first."""
        ...

    def replay_trace_extents(self, trace_ids: Sequence[str]) -> list[tuple[str, int, int, int]]:
        """(trace id, first span start, last span end, spans) of each known trace."""
        ...

    def replay_requests(
        self,
        trace_ids: Sequence[str],
        start_unix_nano: int,
        end_unix_nano: int,
        max_spans: int = 512,
    ) -> list[ExportTraceServiceRequest]:
        """The traces' spans starting in [start, end], as stored, in requests of at most
        ``max_spans`` spans."""
        ...

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
        ...

    def failure_candidates(
        self, start_unix_nano: int, end_unix_nano: int, service: str | None = None
    ) -> tuple[int, pl.DataFrame]:
        """The failure report's counts without the range's spans: (how many traces have
        their root in the range, with ``service`` only those with a span of it there;
        the spans of those traces whose status is ERROR or whose HTTP code is >= 400, as
        ``spanstore.reader.FAILURE_CANDIDATES_SCHEMA``). Traces as ``span_frame`` reads
        them (within an hour of the range); the root as ``analyzer.failures`` picks it."""
        ...

    def traces_frame(
        self, trace_ids: Sequence[str], start_unix_nano: int, end_unix_nano: int
    ) -> pl.DataFrame:
        """Every span of these traces within an hour of [start, end), as a frame."""
        ...

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
        ...

    def data_versions(self, ranges: Sequence[tuple[int, int]]) -> list[int] | None:
        """For each (start, end) range, a number that changes whenever spans starting in
        it are stored or deleted, for readers that keep results per time range; None when
        this reader cannot tell (keep nothing). Take them before the query whose result
        they label: all at once, since each call first waits for acknowledged writes."""
        ...

    def last_unix_nano(self) -> int | None:
        """When the newest stored span ended (cheap; None for an empty store)."""
        ...

    def trace_entities(self, trace_ids: Sequence[str]) -> dict[str, dict[str, list[str]]]:
        """trace_id -> entity key -> sorted distinct values."""
        ...

    def throughput(self, start_unix_nano: int, end_unix_nano: int, bucket_ns: int) -> pl.DataFrame:
        """Columns bucket_unix_nano, spans, errors: span counts per time bucket."""
        ...

    def recent_traces(self, limit: int = 50) -> pl.DataFrame:
        """The newest root spans: trace_id, service_name, name, start_unix_nano,
        duration_ns, status_code, spans."""
        ...

    # -- the query language (#17; spanstore.query compiles, the dialect runs)
    def query_trace_ids(self, query: Query, start_unix_nano: int, end_unix_nano: int) -> list[str]:
        """Ids of the traces with a span in [start, end) that the query selects, sorted."""
        ...

    def find_traces(
        self, query: Query, start_unix_nano: int, end_unix_nano: int, limit: int
    ) -> tuple[int, list[dict[str, Any]]]:
        """(traces matching, the newest ``limit`` as SPEC ``find`` rows)."""
        ...

    def sample_spans(
        self,
        query: Query,
        start_unix_nano: int,
        end_unix_nano: int,
        sample: int,
        complement: bool = False,
    ) -> tuple[int, list[SampledSpan]]:
        """(spans matching, a fixed pseudo-random sample of them decoded); with
        ``complement``, of the other spans in the range."""
        ...

    def trace_ids_with_prefix(self, prefix: str, limit: int = 10) -> list[str]:
        """Stored trace ids starting with the hex ``prefix``, at most ``limit``."""
        ...

    def flow_root_shapes(
        self, service: str, operation: str, start_unix_nano: int, end_unix_nano: int
    ) -> pl.DataFrame | None:
        """Per trace whose root span is ``service``'s ``operation`` starting in the range:
        outcome, duration, structure fingerprint, per-span durations and error flags
        (``spanstore.reader.FLOW_SHAPES_SCHEMA``); None when the store cannot (the caller
        then folds span objects)."""
        ...

    def flow_trace_shapes(
        self,
        trace_ids: Sequence[str],
        start_unix_nano: int | None = None,
        end_unix_nano: int | None = None,
    ) -> pl.DataFrame | None:
        """``flow_root_shapes``'s rows, with ``spans``, for the given traces; or None."""
        ...

    def flow_root_operations(
        self, start_unix_nano: int, end_unix_nano: int, limit: int = 200
    ) -> pl.DataFrame | None:
        """service, operation, traces, failed per root operation in the range; or None."""
        ...

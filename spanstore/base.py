"""The storage interface: one write path and one read path, free of any engine's types.

The collector writes through :class:`SpanWriter`; the analyzer reads through
``spanstore.SpanReader``, which is the one reader every store has:
:class:`spanstore.reader.StoreReader`, over its engine's dialect (``spanstore.dialect``),
for DuckDB (``spanstore.duckdb_store``) and ClickHouse (``spanstore.clickhouse_store``).
A backend supplies a dialect, not a reader, so no second description of the reader's
methods is kept here (decoder processes import this module and never load the read path).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:  # imported for annotations only: decoder processes stay small and quick
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

__all__ = [
    "InvalidRequest",
    "QueryTimeout",
    "SchemaVersionError",
    "SpanWriter",
    "StoreError",
    "StoreUnavailable",
    "WriteResult",
]


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

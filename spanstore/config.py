"""Typed, validated options for opening a store (as ``collector.ReceiverConfig`` is for
the receivers): what every store's write path takes, what only a DuckDB file takes, and
what only a ClickHouse database takes.

``StoreConfig(...).validate()`` raises ``ValueError`` naming the first bad setting, so a
server refuses a bad configuration in one line before it opens anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Final, Literal

from spanstore.policy import IngestPolicy
from spanstore.retention import RetentionPolicy

__all__ = [
    "CHECKPOINT_THRESHOLD",
    "DEFAULT_MAX_QUEUE_BYTES",
    "MAX_NICENESS",
    "ClickHouseConfig",
    "DuckDBConfig",
    "IngestConfig",
    "StoreConfig",
    "check_niceness",
    "size_bytes",
]

#: WAL size at which DuckDB checkpoints (see ``DuckDBStore.__init__``).
CHECKPOINT_THRESHOLD: Final = "64MB"
#: Default memory budget for prepared batches waiting for the writer.
DEFAULT_MAX_QUEUE_BYTES: Final = 64 * 1024 * 1024

_UNITS: Final = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}


#: The largest niceness a process can take (``nice(2)``).
MAX_NICENESS: Final = 19


def size_bytes(text: str) -> int:
    """``"64MB"`` as bytes, as DuckDB reads its sizes; 0 when unreadable."""
    number = text.strip().rstrip("bBiIkKmMgG ").strip()
    unit = text.strip()[len(number) :].strip().lower() or "b"
    try:
        return int(float(number) * _UNITS[unit])
    except (ValueError, KeyError):
        return 0


def check_niceness(name: str, value: object) -> None:
    """Raise ``ValueError`` unless ``value`` is a niceness step, 0 to ``MAX_NICENESS``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if not 0 <= value <= MAX_NICENESS:
        raise ValueError(f"{name} must be 0-{MAX_NICENESS}, got {value!r}")


def _count(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


@dataclass(frozen=True, slots=True)
class IngestConfig:
    """What every store's write path takes."""

    #: Attribute keys indexed as business entities (besides the built-in rule).
    entity_keys: tuple[str, ...] = ()
    #: Worker processes that decode requests (0: decode in the calling thread).
    decoder_processes: int = 0
    #: Their scheduling niceness (0-19, as ``nice``): above 0, reads in the server's own
    #: process get the CPU first when both want it (docs/config.md, "Reads under load").
    decoder_niceness: int = 0
    #: The niceness the store's writer thread takes (0-19 steps nicer than the server;
    #: Linux only): with ``decoder_niceness``, reads first under a flood.
    writer_niceness: int = 0
    #: Spans that may wait for the writer before writes are refused (retryable).
    max_queued_spans: int = 200_000
    policy: IngestPolicy | None = None
    retention: RetentionPolicy | None = None

    def validate(self) -> IngestConfig:
        if not all(isinstance(key, str) and key for key in self.entity_keys):
            raise ValueError(f"entity keys must be non-empty strings, got {self.entity_keys!r}")
        _count("decoder_processes", self.decoder_processes, 0)
        check_niceness("decoder_niceness", self.decoder_niceness)
        check_niceness("writer_niceness", self.writer_niceness)
        _count("max_queued_spans", self.max_queued_spans, 1)
        if self.policy is not None:
            self.policy.validate()
        if self.retention is not None:
            self.retention.validate()
        return self


@dataclass(frozen=True, slots=True)
class DuckDBConfig:
    """What only a DuckDB file takes."""

    #: DuckDB's memory limit; a writer transaction holds at most half of it.
    memory_limit: str = "1GB"
    #: WAL size at which DuckDB checkpoints inside a commit.
    checkpoint_threshold: str = CHECKPOINT_THRESHOLD
    #: Memory budget of the batches waiting for the writer.
    max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES
    #: Whether the writer keeps each trace's fold row (spanstore/trace_shapes.py).
    keep_trace_shapes: bool = True

    def validate(self) -> DuckDBConfig:
        for name in ("memory_limit", "checkpoint_threshold"):
            value = getattr(self, name)
            if not isinstance(value, str) or size_bytes(value) <= 0:
                raise ValueError(f"{name} must be a size such as '512MB', got {value!r}")
        _count("max_queue_bytes", self.max_queue_bytes, 1)
        if not isinstance(self.keep_trace_shapes, bool):
            value = self.keep_trace_shapes
            raise ValueError(f"keep_trace_shapes must be true or false, got {value!r}")
        return self


@dataclass(frozen=True, slots=True)
class ClickHouseConfig:
    """What only a ClickHouse database (chdb directory or server) takes."""

    #: Which tables to read: seqtrace's own, the OpenTelemetry exporter's ``otel_table``,
    #: or whichever the database holds ("auto").
    layout: Literal["auto", "seqtrace", "otel"] = "auto"
    #: The exporter's traces table (its logs are read from ``otel_logs`` beside it).
    otel_table: str = "otel_traces"
    #: Days a span is kept in the tables this store creates (0: forever).
    ttl_days: int = 0

    def validate(self) -> ClickHouseConfig:
        if self.layout not in ("auto", "seqtrace", "otel"):
            raise ValueError(f"layout must be 'auto', 'seqtrace' or 'otel', got {self.layout!r}")
        if not isinstance(self.otel_table, str) or not self.otel_table:
            raise ValueError(f"otel_table must be a table name, got {self.otel_table!r}")
        _count("ttl_days", self.ttl_days, 0)
        return self


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """How to open a store: the ingest settings, and each engine's own."""

    ingest: IngestConfig = field(default_factory=IngestConfig)
    duckdb: DuckDBConfig = field(default_factory=DuckDBConfig)
    clickhouse: ClickHouseConfig = field(default_factory=ClickHouseConfig)

    def validate(self) -> StoreConfig:
        self.ingest.validate()
        self.duckdb.validate()
        self.clickhouse.validate()
        return self

    def options(self, backend: Literal["duckdb", "chdb", "clickhouse"]) -> dict[str, Any]:
        """The keywords of that backend's store constructor (each engine's own only for it)."""
        engine = self.duckdb if backend == "duckdb" else self.clickhouse
        parts = (self.ingest, engine)
        # Each field is the keyword of the same name (DuckDBStore, ClickHouseStore).
        return {f.name: getattr(part, f.name) for part in parts for f in fields(part)}

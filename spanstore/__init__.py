"""The storage layer: one write path and one read path over the span store.

It imports nothing above it (collector, analyzer, ui, seqtrace); an import-linter contract
in the tests keeps it so.
"""

from typing import TYPE_CHECKING

from spanstore.base import (
    SchemaVersionError,
    SpanWriter,
    StoreError,
    StoreUnavailable,
    WriteResult,
)
from spanstore.model import Span, SpanEvent, SpanLink, StoreStats

if TYPE_CHECKING:
    from spanstore.reader import StoreReader as SpanReader

__all__ = [
    "SchemaVersionError",
    "Span",
    "SpanEvent",
    "SpanLink",
    "SpanReader",
    "SpanWriter",
    "StoreError",
    "StoreStats",
    "StoreUnavailable",
    "WriteResult",
    "open_store",
]


def open_store(path: str, *, read_only: bool = False) -> "SpanReader":
    """Open the store ``path`` names: a DuckDB file path or a store URL (``duckdb://``,
    ``chdb://``, ``clickhouse://``; see :mod:`spanstore.urls`). Raises
    ``spanstore.urls.StoreURLError`` (a ``ValueError``) for a URL it cannot understand."""
    from spanstore.urls import open_store_url

    return open_store_url(path, read_only=read_only)


def __getattr__(name: str) -> object:
    # SpanReader is the read path's class (spanstore.reader.StoreReader): imported when
    # first asked for, so that importing the write side (decoder processes) stays light.
    if name == "SpanReader":
        from spanstore.reader import StoreReader

        return StoreReader
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""What an engine supplies to the one reader (``spanstore.reader``): a dialect.

A dialect is a folder of named queries (``spanstore/sql/duckdb/``,
``spanstore/sql/clickhouse/``, and ``otel_NAME.sql`` in the latter for the OpenTelemetry
Collector's ``otel_traces`` table) and a few primitives: run a named query with
parameters to an Arrow table, say how trace ids and time bounds are spelled, and which
queries exist. Everything else (what each query's rows mean) is written once, in
:class:`spanstore.reader.StoreReader`.

Parameters are named (``$name`` in the SQL): the reader passes every parameter a query
of that name may use in any dialect, and each dialect binds the ones its file names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from importlib import resources as importlib_resources
from typing import Final, Literal, Protocol

import pyarrow as pa

__all__ = ["Dialect", "SpanLayout", "parameter_names", "query_names", "sql_text"]

#: How a dialect's ``spans_of_traces`` rows carry a span: its stored protobuf (``raw``,
#: lossless, with resource and scope ids for ``refs_by_id``), or one column per field
#: (the OpenTelemetry exporter's table: attribute values as strings).
SpanLayout = Literal["protobuf", "columns"]

_PARAMETER: Final = re.compile(r"\$([a-z_][a-z0-9_]*)")
_COMMENT: Final = re.compile(r"--[^\n]*")


@cache
def sql_text(folder: str, name: str) -> str:
    """``spanstore/sql/FOLDER/NAME.sql`` as written (comments included)."""
    path = importlib_resources.files("spanstore") / "sql" / folder / f"{name}.sql"
    return path.read_text()


@cache
def query_names(folder: str) -> frozenset[str]:
    """The names of the queries in ``spanstore/sql/FOLDER/``."""
    root = importlib_resources.files("spanstore") / "sql" / folder
    return frozenset(
        entry.name[: -len(".sql")] for entry in root.iterdir() if entry.name.endswith(".sql")
    )


@cache
def parameter_names(text: str) -> frozenset[str]:
    """The ``$name`` parameters a statement uses (comments aside)."""
    return frozenset(_PARAMETER.findall(_COMMENT.sub("", text)))


class Dialect(Protocol):
    """One engine's SQL folder and primitives (see the module docstring)."""

    #: What the reader's bounds mean when a caller leaves a range open.
    far_past: int
    far_future: int
    #: Trace ids sent per query at most (longer lists are split, the rows concatenated).
    ids_per_query: int
    span_layout: SpanLayout

    def has_query(self, name: str) -> bool:
        """Whether this dialect answers the named query (the reader composes the few
        that a layout lacks from others, e.g. ``entity_traces_in_range``)."""
        ...

    def table(self, name: str, params: Mapping[str, object]) -> pa.Table:
        """Run the named query: strings as text, ids and ``raw`` protobuf as bytes."""
        ...

    def trace_ids(self, hex_ids: Iterable[str]) -> list[bytes] | list[str]:
        """Hex trace ids in the form this engine stores them (unreadable ones dropped)."""
        ...

    def id_set(self, ids: Sequence[bytes] | Sequence[str]) -> object:
        """The parameter value for ``trace_id IN $trace_ids``."""
        ...

    def clamp(self, unix_nano: int) -> int:
        """A time as this engine's time columns can hold it."""
        ...

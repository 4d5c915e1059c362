"""What a DuckDB read sees: the committed tables plus the acknowledged batches not yet in.

An export is acknowledged once its journal record is on disk; the writer thread moves it
into DuckDB later, a row group per transaction (ARCHITECTURE.md, "Who owns the store").
Between the two the batch is Arrow in memory: queued, or appended to the writer's open
transaction, which other cursors cannot see (MVCC). A read that waited for the writer to
commit all of that waited behind the whole acknowledged backlog (issue 20: 2-5 s per read
under a flood). Instead, a read's cursor shadows each store table with a TEMP VIEW of the
same name (DuckDB resolves unqualified names in ``temp`` first, so the queries of
``spanstore/sql/`` run unchanged) that unions the committed table with those batches.
The views read them through Arrow sources bound once per cursor (``UnseenSources``): a
read swaps its snapshot in and out, so no statement pays for DDL.

Exactly once: the caller snapshots the unseen batches (journal seq -> batch) *before* the
cursor's transaction takes its snapshot, and a batch leaves that map only after its
COMMIT. So a batch missing from the snapshot was committed before the transaction began
and is in the tables; and of the batches in the snapshot, those the transaction sees
committed are dropped by the journal position committed with them (``journal_seq``: every
record up to it is in; ``journal_rows``: so many leading spans of the next record,
``journal_seq + 1``, are in too, where a commit ended inside a record; entity and link
rows carry the place of their span for that). No span is seen twice or missed. The
position is read from the store's own table: no statement scans the batches for it.
A snapshot may serve every statement of a request that began before it was taken
(``DuckDBStore._unseen_snapshot``): what the request must see was in it, and what left
it since is committed.

Log records take the same path (``spanstore/duckdb_logs.py``): a log batch is unseen
from its journal append to its COMMIT and shows through a ``logs`` view the same way; a
log record is never split across transactions, so its journal seq alone says whether a
statement sees it committed. So log reads do not wait for the writer either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spanstore.decode.prepare import (
    _ENTITY_ARROW_SCHEMA,
    _LINK_ARROW_SCHEMA,
    _SPAN_ARROW_SCHEMA,
    PreparedBatch,
)
from spanstore.logs import LOG_COLUMNS, LogBatch
from spanstore.wire import RESOURCE_COLUMNS, SCOPE_COLUMNS

__all__ = [
    "UnseenSources",
    "committed_position",
    "define_views",
    "narrowed",
    "unseen_tables",
]

#: Tables whose queries use ``rowid`` (spanstore/sql: entity_trace_ids, spans_of_traces,
#: logs_of_traces, slo_frame): their
#: views carry it as a column, negative for the unseen rows so that it stays unique.
_WITH_ROWID: Final = frozenset({"spans", "span_entities", "logs"})
#: Tables whose rows are inserted once per key (INSERT OR IGNORE): an unseen row whose key
#: is committed already is not shown again.
_KEYED: Final = {"resources": "resource_id", "scopes": "scope_id"}


def committed_position(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """(journal_seq, journal_rows) as this cursor's transaction sees them."""
    rows = dict(
        con.execute(
            "SELECT key, value FROM seqtrace_meta WHERE key IN ('journal_seq', 'journal_rows')"
        ).fetchall()
    )
    return int(rows.get("journal_seq", 0)), int(rows.get("journal_rows", 0))


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_catalog = current_database() AND table_schema = 'main' "
        "AND table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return [(name, kind) for name, kind in rows]


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def unseen_tables(
    unseen: Sequence[tuple[int, PreparedBatch | LogBatch]],
    positions: dict[int, tuple[pa.Array, pa.Array]] | None = None,
) -> dict[str, pa.Table]:
    """The (journal seq, batch) records as one Arrow table per store table, with each
    row's record (``_seq``) and, for spans, entity and link rows, the place of the span
    in its record (``_pos``: a commit may end after the first N spans of a record).
    Every table is there, empty when no record has rows for it, with the columns of a
    decoded batch: a cursor's views are bound once to these schemas. ``positions``
    keeps each record's entity and link ``_pos`` between calls (batches do not change)."""
    span_records = [(seq, b) for seq, b in unseen if isinstance(b, PreparedBatch)]
    log_records = [(seq, b) for seq, b in unseen if isinstance(b, LogBatch)]
    sizes = np.array([batch.size for _, batch in span_records], dtype=np.int64)
    seqs = np.array([seq for seq, _ in span_records], dtype=np.int64)
    spans = _joined(_SPAN_ARROW_SCHEMA, [b.spans for _, b in span_records])
    spans = spans.append_column("_seq", pa.array(np.repeat(seqs, sizes), pa.int64()))
    starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
    spans = spans.append_column(
        "_pos", pa.array(np.arange(len(starts), dtype=np.int64) - starts, pa.int64())
    )
    # ``positions`` is shared by concurrent readers and pruned by whichever of them sees
    # a commit first: read each entry once into this call's own dict.
    shared = positions if positions is not None else {}
    places: dict[int, tuple[pa.Array, pa.Array]] = {}
    for seq, batch in span_records:
        found = shared.get(seq)
        if found is None:
            found = shared[seq] = _span_places(batch)
        places[seq] = found

    def with_seq(
        schema: pa.Schema, records: Sequence[tuple[int, pa.Table]], pos: list[pa.Array] | None
    ) -> pa.Table:
        joined = _joined(schema, [table for _, table in records])
        counts = np.array([table.num_rows for _, table in records], dtype=np.int64)
        record_seqs = np.array([seq for seq, _ in records], dtype=np.int64)
        joined = joined.append_column("_seq", pa.array(np.repeat(record_seqs, counts), pa.int64()))
        if pos is None:
            return joined
        return joined.append_column("_pos", pa.chunked_array(pos, pa.int64()))

    resources: dict[int, tuple[str, str, bytes]] = {}
    scopes: dict[int, tuple[str, str, str, bytes]] = {}
    for _, record in unseen:
        resources.update(record.resources)
        scopes.update(record.scopes)
    tables = {
        "spans": spans,
        "span_entities": with_seq(
            _ENTITY_ARROW_SCHEMA,
            [(seq, b.entities) for seq, b in span_records],
            [places[seq][0] for seq, _ in span_records],
        ),
        "span_links": with_seq(
            _LINK_ARROW_SCHEMA,
            [(seq, b.links) for seq, b in span_records],
            [places[seq][1] for seq, _ in span_records],
        ),
        "logs": with_seq(LOG_COLUMNS, [(seq, b.logs) for seq, b in log_records], None),
        "resources": _table(RESOURCE_COLUMNS, [(k, *v) for k, v in resources.items()]),
        "scopes": _table(SCOPE_COLUMNS, [(k, *v) for k, v in scopes.items()]),
    }
    for table in _WITH_ROWID:
        data = tables[table]
        tables[table] = data.append_column(
            "rowid", pa.array(np.arange(-data.num_rows, 0, dtype=np.int64))
        )
    return tables


def _span_places(batch: PreparedBatch) -> tuple[pa.Array, pa.Array]:
    """The place in ``batch.spans`` of the span of each entity row and of each link row
    (a commit that ends inside the record takes the rows of the spans it takes)."""
    keys = _span_keys(batch.spans)

    def places(table: pa.Table) -> pa.Array:
        if not table.num_rows:
            return pa.array([], pa.int64())
        found: pa.Array = pc.index_in(_span_keys(table), value_set=keys)
        return found.cast(pa.int64())

    return places(batch.entities), places(batch.links)


def _span_keys(table: pa.Table) -> pa.Array:
    keys: pa.ChunkedArray = pc.binary_join_element_wise(
        table.column("trace_id"), table.column("span_id"), b""
    )
    return keys.combine_chunks()


#: Named queries (spanstore/sql/duckdb) that read only the rows of the traces in their
#: ``$trace_ids`` (or ``$trace_id``) parameter from these tables: a read shows them only
#: those unseen rows. Scanning a snapshot (up to a row group of spans) cost every such
#: statement the conversion of all its rows' columns, twice in a flow query.
_BY_TRACE: Final = {
    "spans_of_traces": ("spans",),
    "flow_trace_shapes": ("spans",),
    "trace_rows": ("spans",),
    "logs_of_traces": ("logs",),
    "traces_frame": ("spans",),
    "trace_entities": ("span_entities",),
    "trace_entities_in_range": ("span_entities",),
}


def narrowed(
    tables: dict[str, pa.Table], query: str, params: Mapping[str, object]
) -> dict[str, pa.Table]:
    """``tables`` less the unseen rows the named query cannot read (it filters on them
    by its parameters, so its answer is the same); the others unchanged."""
    out = dict(tables)
    ids = params.get("trace_ids")
    if ids is None and "trace_id" in params:
        ids = [params["trace_id"]]
    if isinstance(ids, list) and query in _BY_TRACE:
        wanted = pa.array(ids, pa.binary())
        for table in _BY_TRACE[query]:
            data = out[table]
            out[table] = data.filter(pc.is_in(data.column("trace_id"), value_set=wanted))
    elif isinstance(ids, list) and query == "linked_trace_ids":  # either end of a link
        wanted = pa.array(ids, pa.binary())
        links = out["span_links"]
        keep = pc.or_(
            pc.is_in(links.column("trace_id"), value_set=wanted),
            pc.is_in(links.column("linked_trace_id"), value_set=wanted),
        )
        out["span_links"] = links.filter(keep)
    elif query == "entity_trace_ids" and isinstance(params.get("value"), str):
        entities = out["span_entities"]
        out["span_entities"] = entities.filter(
            pc.equal(entities.column("value"), pa.scalar(params["value"], pa.string()))
        )
    return out


def _joined(schema: pa.Schema, tables: list[pa.Table]) -> pa.Table:
    """``tables`` as one, with at least the columns of ``schema`` (none may be given).
    Decoded batches have exactly ``schema``: their chunks are put together as they are;
    unifying the schemas of a few hundred tables cost ten times more."""
    if tables and all(table.schema.equals(schema) for table in tables):
        return pa.concat_tables(tables)
    return pa.concat_tables([schema.empty_table(), *tables], promote_options="default")


class UnseenSources:
    """The Arrow sources a cursor's views read (``unseen_<table>``), registered once.

    Registering an Arrow table is DDL on the cursor (a temporary view), about as costly
    as a small query, and a read used to register and drop six of them around every
    statement. Instead each name is bound once to a source whose table a read swaps in
    (``show``) and out (``clear``, so an idle cursor holds no batch): DuckDB asks the
    source for a fresh Arrow stream (``__arrow_c_stream__``) at every scan. Each table
    keeps one schema (``unseen_tables``), which the views were bound to."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._empty = unseen_tables([])
        self._sources = {name: _SOURCE(table) for name, table in self._empty.items()}
        for name, source in self._sources.items():
            con.register(f"unseen_{name}", source)

    def show(self, tables: dict[str, pa.Table]) -> None:
        for name, table in tables.items():
            self._sources[name].table = table

    def clear(self) -> None:
        for name, source in self._sources.items():
            source.table = self._empty[name]

    def showing(self) -> dict[str, pa.Table]:
        return {name: source.table for name, source in self._sources.items()}


class _Source:
    """An Arrow stream producer (the PyCapsule interface) over a replaceable table."""

    __slots__ = ("table",)

    def __init__(self, table: pa.Table) -> None:
        self.table = table

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        return self.table.__arrow_c_stream__(requested_schema)


def _scan_source() -> type[Any] | None:
    """With DuckDB's own source protocol (duckdb 2), a source that gives each scan only
    the columns it reads and declares a fixed schema (no stream opened to bind)."""
    try:
        from duckdb._sources import ArrowScanSource
    except ImportError:
        return None

    class ScannedSource(ArrowScanSource):
        schema_is_stable = True

        @property
        def table(self) -> pa.Table:
            table: pa.Table = self.obj
            return table

        @table.setter
        def table(self, table: pa.Table) -> None:
            self.obj = table

        def rows(self) -> int | None:
            return int(self.obj.num_rows)

        def __arrow_c_schema__(self) -> object:
            return self.obj.schema.__arrow_c_schema__()

        def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
            # what ``register`` looks for; the scan itself calls ``stream``
            return self.obj.__arrow_c_stream__(requested_schema)

        def stream(
            self, columns: Sequence[int] | None, filters: Sequence[Any]
        ) -> tuple[object, bool]:
            if columns is None:
                return self.obj.__arrow_c_stream__(), False
            return self.obj.select(list(columns)).__arrow_c_stream__(), True

    return ScannedSource


_SOURCE: Final[type[Any]] = _scan_source() or _Source


def define_views(
    con: duckdb.DuckDBPyConnection,
    tables: dict[str, pa.Table],
    schema: dict[str, list[tuple[str, str]]],
) -> None:
    """Shadow the store's tables on ``con`` with views that add the registered unseen
    rows the querying statement does not see committed. Once per cursor (DDL costs
    3-9 ms a statement here): later reads only register other tables under the same
    names. No explicit transaction: each statement's views read the committed position
    of that statement's own snapshot. ``schema`` caches the tables' columns."""
    database = _quoted(con.execute("SELECT current_database()").fetchall()[0][0])
    # What a statement sees committed: records up to ``upto`` whole, and the first
    # ``cut`` spans of the next record as well. That record is ``upto + 1``: journal
    # records are numbered one by one and the writer takes them in that order, so the
    # only record a commit can end inside is the one after the last it took whole. The
    # position comes from the store's own table: no statement scans the unseen batches
    # for it.
    statements = [
        "CREATE OR REPLACE TEMP VIEW unseen_position AS SELECT "
        "coalesce(max(CASE WHEN key = 'journal_seq' THEN CAST(value AS BIGINT) END), 0) AS upto, "
        "coalesce(max(CASE WHEN key = 'journal_rows' THEN CAST(value AS BIGINT) END), 0) AS cut "
        f"FROM {database}.main.seqtrace_meta"
    ]
    for table, data in tables.items():
        if table not in schema:
            schema[table] = _columns(con, table)
        columns = schema[table]
        if not columns:  # a file without this table (logs before schema version 3)
            continue
        have = set(data.schema.names)
        committed = ", ".join(_quoted(name) for name, _ in columns)
        shown = ", ".join(
            f"CAST({'u.' + _quoted(name) if name in have else 'NULL'} AS {kind}) AS {_quoted(name)}"
            for name, kind in columns
        )
        if table in _WITH_ROWID:
            committed += ", rowid AS rowid"
            shown += ", u.rowid AS rowid"
        if table in _KEYED:
            key = _quoted(_KEYED[table])
            where = f"u.{key} NOT IN (SELECT {key} FROM {database}.main.{table})"
        elif table == "logs":  # never split: whole records only
            where = "u._seq > p.upto"
        else:  # spans, and entity and link rows by the place of their span
            where = "u._seq > p.upto AND NOT (u._seq = p.upto + 1 AND u._pos < p.cut)"
        statements.append(
            f"CREATE OR REPLACE TEMP VIEW {table} AS "
            f"SELECT {committed} FROM {database}.main.{table} "
            f"UNION ALL SELECT {shown} FROM unseen_{table} AS u, unseen_position AS p "
            f"WHERE {where}"
        )
    con.execute(";\n".join(statements))


def _table(schema: pa.Schema, rows: list[tuple[object, ...]]) -> pa.Table:
    return pa.Table.from_arrays(
        [pa.array([row[i] for row in rows], type=field.type) for i, field in enumerate(schema)],
        schema=schema,
    )

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

import functools
import re
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
    "UnseenSnapshot",
    "UnseenSources",
    "committed_position",
    "define_views",
    "tables_read",
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
    return UnseenSnapshot(unseen, positions).tables()


#: The store tables the views shadow (``define_views``).
_TABLES: Final = ("spans", "span_entities", "span_links", "logs", "resources", "scopes")
_TABLE_NAME: Final = re.compile(r"\b(" + "|".join(_TABLES) + r")\b")


_COMMENT: Final = re.compile(r"--[^\n]*")


def tables_read(statement: str) -> frozenset[str]:
    """The store tables a statement names, comments aside (a name too many only costs
    the statement the views)."""
    return frozenset(_TABLE_NAME.findall(_COMMENT.sub("", statement)))


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
    "traces_frame_since": ("spans",),
    "trace_entities": ("span_entities",),
    "trace_entities_in_range": ("span_entities",),
    "failure_parts_of": ("spans",),
}
#: refs_by_id reads only the resources and scopes of its ids.
_BY_ID: Final = {"resources": "resource_ids", "scopes": "scope_ids"}


class UnseenSnapshot:
    """The unseen records of one moment, made into the views' Arrow tables only as far
    as a statement needs them.

    Under a flood a snapshot holds hundreds of records and a new one is taken for
    nearly every request; making every table of every record (and the place of each
    entity and link row's span) was a third of an entity diagram's time in its read
    thread, most of it for rows its statements then filtered out. So each table is put
    together when a statement first reads it, and a named query's rows are filtered by
    its parameters first (``for_query``): the places are found only for the records
    that still have rows, and a statement left with no unseen row at all is told so
    (None) and runs on the committed tables alone, its answer the same. A snapshot may
    be shared by concurrent reads: what it puts together is the same whoever does it."""

    def __init__(
        self,
        unseen: Sequence[tuple[int, PreparedBatch | LogBatch]],
        positions: dict[int, tuple[pa.Array, pa.Array]] | None = None,
    ) -> None:
        self._spans = [(seq, b) for seq, b in unseen if isinstance(b, PreparedBatch)]
        self._logs = [(seq, b) for seq, b in unseen if isinstance(b, LogBatch)]
        self._records = list(unseen)
        # ``positions`` is shared by concurrent readers and pruned by whichever of them
        # sees a commit first: each entry is read once into this snapshot's own dict.
        self._shared = positions if positions is not None else {}
        self._places: dict[int, tuple[pa.Array, pa.Array]] = {}
        self._raw: dict[str, pa.Table] = {}
        self._full: dict[str, pa.Table] = {}

    def tables(self) -> dict[str, pa.Table]:
        """Every table, with every unseen row."""
        for name in _TABLES:
            if name not in self._full:
                self._full[name] = self._finished(name, self._rows(name))
        return dict(self._full)

    def for_query(
        self, query: str, params: Mapping[str, object], reads: frozenset[str]
    ) -> dict[str, pa.Table] | None:
        """The tables to show the named query, which ``reads`` these store tables: only
        the unseen rows it can read (it filters on them by its parameters, so its answer
        is the same), the other tables empty; None when that leaves no row at all."""
        shown: dict[str, pa.Table] = {}
        for name in reads:
            rows = self._narrowed(name, query, params)
            if rows is None:
                rows = self._full.get(name)
                if rows is None:
                    rows = self._full[name] = self._finished(name, self._rows(name))
            elif rows.num_rows:
                rows = self._finished(name, rows)
            if rows.num_rows:
                shown[name] = rows
        if not shown:
            return None
        return {**_empty_tables(), **shown}

    def _narrowed(self, name: str, query: str, params: Mapping[str, object]) -> pa.Table | None:
        """The rows of table ``name`` the named query can read (not yet ``_finished``);
        None when it may read all of them. The test reads the key columns alone: most
        often no row passes, and then no table is put together."""
        ids = params.get("trace_ids")
        if ids is None and "trace_id" in params:
            ids = [params["trace_id"]]
        value = params.get("value")
        keys = params.get(_BY_ID.get(name, ""))
        if isinstance(ids, list) and name in _BY_TRACE.get(query, ()):
            wanted = pa.array(ids, pa.binary())
            keep = pc.is_in(self._column(name, "trace_id"), value_set=wanted)
        elif isinstance(ids, list) and query == "linked_trace_ids" and name == "span_links":
            wanted = pa.array(ids, pa.binary())  # either end of a link
            keep = pc.or_(
                pc.is_in(self._column(name, "trace_id"), value_set=wanted),
                pc.is_in(self._column(name, "linked_trace_id"), value_set=wanted),
            )
        elif query == "trace_ids_starting_in" and name == "spans":
            starts = self._column(name, "start_unix_nano")
            inside = [  # its three ranges [a_from, a_to), [b_from, b_to), [c_from, c_to)
                pc.and_(
                    pc.greater_equal(starts, pa.scalar(params[f"{n}_from"], pa.int64())),
                    pc.less(starts, pa.scalar(params[f"{n}_to"], pa.int64())),
                )
                for n in "abc"
            ]
            keep = pc.or_(pc.or_(inside[0], inside[1]), inside[2])
        elif query == "entity_trace_ids" and name == "span_entities" and isinstance(value, str):
            keep = pc.equal(self._column(name, "value"), pa.scalar(value, pa.string()))
        elif query == "refs_by_id" and isinstance(keys, list):
            rows = self._rows(name)  # a few rows per record at most: put together
            wanted = pa.array(keys, pa.uint64())
            return rows.filter(pc.is_in(rows.column(0), value_set=wanted))
        else:
            return None
        if not pc.any(keep).as_py():
            return _no_rows(name)
        return self._rows(name).filter(keep)

    def _column(self, name: str, column: str) -> pa.ChunkedArray:
        """Column ``column`` of table ``name`` over every record, in record order."""
        records = self._logs if name == "logs" else self._spans
        attribute = _RECORD_TABLE[name]
        try:
            return pa.chunked_array(
                [
                    chunk
                    for _, batch in records
                    for chunk in getattr(batch, attribute).column(column).chunks
                ],
                _RAW_SCHEMAS[name].field(column).type,
            )
        except (KeyError, pa.ArrowInvalid, pa.ArrowTypeError):  # a batch of other columns
            found: pa.ChunkedArray = self._rows(name).column(column)
            return found

    def _rows(self, name: str) -> pa.Table:
        """Table ``name`` of every record, with each row's record (``_seq``) and place
        in it (``_pos`` for spans; ``_row``, its row in the record's own table, for
        entity and link rows, whose ``_pos`` is their span's: ``_finished``)."""
        found = self._raw.get(name)
        if found is None:
            found = self._raw[name] = self._made(name)
        return found

    def _made(self, name: str) -> pa.Table:
        if name == "spans":
            parts = [batch.spans for _, batch in self._spans]
            return _numbered(_SPAN_ARROW_SCHEMA, [seq for seq, _ in self._spans], parts, "_pos")
        if name == "span_entities":
            parts = [batch.entities for _, batch in self._spans]
            return _numbered(_ENTITY_ARROW_SCHEMA, [seq for seq, _ in self._spans], parts, "_row")
        if name == "span_links":
            parts = [batch.links for _, batch in self._spans]
            return _numbered(_LINK_ARROW_SCHEMA, [seq for seq, _ in self._spans], parts, "_row")
        if name == "logs":
            parts = [batch.logs for _, batch in self._logs]
            return _numbered(LOG_COLUMNS, [seq for seq, _ in self._logs], parts, None)
        if name == "resources":
            resources: dict[int, tuple[str, str, bytes]] = {}
            for _, record in self._records:
                resources.update(record.resources)
            return _table(RESOURCE_COLUMNS, [(k, *v) for k, v in resources.items()])
        scopes: dict[int, tuple[str, str, str, bytes]] = {}
        for _, record in self._records:
            scopes.update(record.scopes)
        return _table(SCOPE_COLUMNS, [(k, *v) for k, v in scopes.items()])

    def _finished(self, name: str, rows: pa.Table) -> pa.Table:
        """``rows`` of table ``name`` as its view reads them: entity and link rows with
        their span's ``_pos``, and a negative ``rowid`` where queries use one."""
        if name in ("span_entities", "span_links"):
            which = 0 if name == "span_entities" else 1
            at = rows.schema.get_field_index("_row")
            rows = rows.set_column(at, "_pos", self._positions(rows, which))
        if name in _WITH_ROWID:
            rows = rows.append_column(
                "rowid", pa.array(np.arange(-rows.num_rows, 0, dtype=np.int64))
            )
        return rows

    def _positions(self, rows: pa.Table, which: int) -> pa.ChunkedArray | pa.Array:
        """The ``_pos`` of entity (``which`` 0) or link (1) ``rows``: of every record's
        rows in record order, or of a few of them."""
        if rows.num_rows == self._rows("span_entities" if which == 0 else "span_links").num_rows:
            return pa.chunked_array(
                [self._place(seq, batch)[which] for seq, batch in self._spans], pa.int64()
            )
        seqs = rows.column("_seq").to_numpy()
        within = rows.column("_row").to_numpy()
        out = np.zeros(rows.num_rows, dtype=np.int64)
        batches = dict(self._spans)
        for seq in np.unique(seqs):
            mine = seqs == seq
            places = self._place(int(seq), batches[int(seq)])[which]
            out[mine] = places.to_numpy()[within[mine]]
        return pa.array(out, pa.int64())

    def _place(self, seq: int, batch: PreparedBatch) -> tuple[pa.Array, pa.Array]:
        found = self._places.get(seq)
        if found is None:
            found = self._shared.get(seq)
            if found is None:
                found = self._shared[seq] = _span_places(batch)
            self._places[seq] = found
        return found


def _numbered(
    schema: pa.Schema, seqs: list[int], parts: list[pa.Table], place: str | None
) -> pa.Table:
    """``parts`` (one record's rows each) as one table, with each row's record
    (``_seq``) and, named ``place``, its row in its record."""
    joined = _joined(schema, parts)
    counts = np.array([part.num_rows for part in parts], dtype=np.int64)
    joined = joined.append_column(
        "_seq", pa.array(np.repeat(np.array(seqs, dtype=np.int64), counts), pa.int64())
    )
    if place is None:
        return joined
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    within = np.arange(len(starts), dtype=np.int64) - starts
    return joined.append_column(place, pa.array(within, pa.int64()))


#: Where a record keeps the rows of each of these store tables.
_RECORD_TABLE: Final = {
    "spans": "spans",
    "span_entities": "entities",
    "span_links": "links",
    "logs": "logs",
}
_RAW_SCHEMAS: Final = {
    "spans": _SPAN_ARROW_SCHEMA,
    "span_entities": _ENTITY_ARROW_SCHEMA,
    "span_links": _LINK_ARROW_SCHEMA,
    "logs": LOG_COLUMNS,
}


@functools.cache
def _no_rows(name: str) -> pa.Table:
    return UnseenSnapshot([])._rows(name)


@functools.cache
def _empty_tables() -> dict[str, pa.Table]:
    """Every view's table with no row (the schemas the views are bound to)."""
    return UnseenSnapshot([]).tables()


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

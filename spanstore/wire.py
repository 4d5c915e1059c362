"""A prepared batch as bytes: what the decoder processes send and the journal keeps.

One encoding serves both, so a batch decoded in a worker is written to the ingest journal
as the very bytes the worker sent, without being encoded again under the server's
interpreter lock (that encoding was a large share of the lock's time, docs/performance.md).
A record is the batch's five tables (spans, entities, links, resources, scopes) as Arrow
IPC streams, each behind its length as 8 little-endian bytes. Only what DuckDB needs is
kept, after the ingest policy: nothing redacted reaches the journal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from spanstore.decode.prepare import PreparedBatch

__all__ = [
    "RESOURCE_COLUMNS",
    "SCOPE_COLUMNS",
    "decode_batch",
    "decode_tables",
    "encode_batch",
    "encode_tables",
    "journal_record",
    "reference_maps",
    "reference_table",
    "reference_tables",
]

RESOURCE_COLUMNS: Final = pa.schema(
    [
        ("resource_id", pa.uint64()),
        ("service_name", pa.string()),
        ("schema_url", pa.string()),
        ("raw", pa.binary()),
    ]
)
SCOPE_COLUMNS: Final = pa.schema(
    [
        ("scope_id", pa.uint64()),
        ("name", pa.string()),
        ("version", pa.string()),
        ("schema_url", pa.string()),
        ("raw", pa.binary()),
    ]
)


def _ipc(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def reference_table(columns: pa.Schema, rows: Sequence[tuple[Any, ...]]) -> pa.Table:
    """Resource or scope rows, ``(id, *fields)``, as a table of ``columns``."""
    return pa.Table.from_arrays(
        [pa.array([row[i] for row in rows], type=field.type) for i, field in enumerate(columns)],
        schema=columns,
    )


def reference_tables(
    resources: Mapping[int, tuple[Any, ...]], scopes: Mapping[int, tuple[Any, ...]]
) -> tuple[pa.Table, pa.Table]:
    """A batch's resources and scopes (id -> fields) as tables."""
    return (
        reference_table(RESOURCE_COLUMNS, [(key, *value) for key, value in resources.items()]),
        reference_table(SCOPE_COLUMNS, [(key, *value) for key, value in scopes.items()]),
    )


def reference_maps(
    resources: pa.Table, scopes: pa.Table
) -> tuple[dict[int, tuple[str, str, bytes]], dict[int, tuple[str, str, str, bytes]]]:
    """The tables of ``reference_tables`` back as a batch's id -> fields maps."""
    return (
        {
            row["resource_id"]: (row["service_name"], row["schema_url"], row["raw"])
            for row in resources.to_pylist()
        },
        {
            row["scope_id"]: (row["name"], row["version"], row["schema_url"], row["raw"])
            for row in scopes.to_pylist()
        },
    )


def encode_tables(tables: Sequence[pa.Table], magic: bytes = b"") -> bytes:
    """A record: ``magic``, then each table as an Arrow IPC stream behind its length."""
    out = bytearray(magic)
    for part in (_ipc(table) for table in tables):
        out += part.size.to_bytes(8, "little")
        out += memoryview(part)
    return bytes(out)


def encode_batch(batch: PreparedBatch) -> bytes:
    """The batch's record (see the module docstring)."""
    resources, scopes = reference_tables(batch.resources, batch.scopes)
    return encode_tables([batch.spans, batch.entities, batch.links, resources, scopes])


def journal_record(batch: PreparedBatch) -> bytes:
    """What the journal keeps of ``batch``: the worker's own bytes when it has them."""
    return batch.wire if batch.wire is not None else encode_batch(batch)


def decode_tables(payload: bytes, count: int = 5, magic: bytes = b"") -> list[pa.Table]:
    """The first ``count`` tables of a record (after its ``magic``); they share the
    payload's memory."""
    tables: list[pa.Table] = []
    buffer = pa.py_buffer(payload)
    at = len(magic)
    while at < len(payload) and len(tables) < count:
        length = int.from_bytes(payload[at : at + 8], "little")
        tables.append(pa.ipc.open_stream(buffer.slice(at + 8, length)).read_all())
        at += 8 + length
    if len(tables) != count:
        kind = "batch" if not magic else "log"
        raise ValueError(f"a {kind} record holds {len(tables)} tables, not {count}")
    return tables


def decode_batch(payload: bytes) -> PreparedBatch:
    """The batch of a record (for the journal's replay: no span keys, no counts)."""
    spans, entities, links, resources, scopes = decode_tables(payload)
    starts = spans.column("start_unix_nano")
    resource_map, scope_map = reference_maps(resources, scopes)
    return PreparedBatch(
        spans=spans,
        entities=entities,
        links=links,
        resources=resource_map,
        scopes=scope_map,
        span_keys=[],
        min_start=pc.min(starts).as_py() or 0,
        max_start=pc.max(starts).as_py() or 0,
    )

"""A prepared batch as bytes: what the decoder processes send and the journal keeps.

One encoding serves both, so a batch decoded in a worker is written to the ingest journal
as the very bytes the worker sent, without being encoded again under the server's
interpreter lock (that encoding was a large share of the lock's time, docs/performance.md).
A record is the batch's five tables (spans, entities, links, resources, scopes) as Arrow
IPC streams, each behind its length as 8 little-endian bytes. Only what DuckDB needs is
kept, after the ingest policy: nothing redacted reaches the journal.
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from spanstore.decode.prepare import PreparedBatch

__all__ = ["RESOURCE_COLUMNS", "SCOPE_COLUMNS", "decode_batch", "encode_batch", "journal_record"]

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


def encode_batch(batch: PreparedBatch) -> bytes:
    """The batch's record (see the module docstring)."""
    resources = pa.Table.from_pylist(
        [
            {"resource_id": rid, "service_name": v[0], "schema_url": v[1], "raw": v[2]}
            for rid, v in batch.resources.items()
        ],
        schema=RESOURCE_COLUMNS,
    )
    scopes = pa.Table.from_pylist(
        [
            {"scope_id": sid, "name": v[0], "version": v[1], "schema_url": v[2], "raw": v[3]}
            for sid, v in batch.scopes.items()
        ],
        schema=SCOPE_COLUMNS,
    )
    parts = [_ipc(t) for t in (batch.spans, batch.entities, batch.links, resources, scopes)]
    out = bytearray()
    for part in parts:
        out += part.size.to_bytes(8, "little")
        out += memoryview(part)
    return bytes(out)


def journal_record(batch: PreparedBatch) -> bytes:
    """What the journal keeps of ``batch``: the worker's own bytes when it has them."""
    return batch.wire if batch.wire is not None else encode_batch(batch)


def decode_tables(payload: bytes, count: int = 5) -> list[pa.Table]:
    """The first ``count`` tables of a record; they share the payload's memory."""
    tables: list[pa.Table] = []
    buffer = pa.py_buffer(payload)
    at = 0
    while at < len(payload) and len(tables) < count:
        length = int.from_bytes(payload[at : at + 8], "little")
        tables.append(pa.ipc.open_stream(buffer.slice(at + 8, length)).read_all())
        at += 8 + length
    if len(tables) != count:
        raise ValueError(f"a batch record holds {len(tables)} tables, not {count}")
    return tables


def decode_batch(payload: bytes) -> PreparedBatch:
    """The batch of a record (for the journal's replay: no span keys, no counts)."""
    spans, entities, links, resources, scopes = decode_tables(payload)
    starts = spans.column("start_unix_nano")
    return PreparedBatch(
        spans=spans,
        entities=entities,
        links=links,
        resources={
            row["resource_id"]: (row["service_name"], row["schema_url"], row["raw"])
            for row in resources.to_pylist()
        },
        scopes={
            row["scope_id"]: (row["name"], row["version"], row["schema_url"], row["raw"])
            for row in scopes.to_pylist()
        },
        span_keys=[],
        min_start=pc.min(starts).as_py() or 0,
        max_start=pc.max(starts).as_py() or 0,
    )

"""DuckDB functions that read one span attribute out of ``spans.raw`` (the protobuf).

Used only where a byte pattern cannot answer (``spanstore.query.protobytes``): ordering
(``>``, ``<``) and regular expressions on attributes that have no column of their own.
The compiled SQL calls them behind a ``CASE`` on the key's byte pattern, so only spans
that carry the key are decoded, a vector (2048 spans) at a time.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanProto

TEXT_FUNCTION = "seqtrace_attr_text"
NUMBER_FUNCTION = "seqtrace_attr_number"


def _values(raws: pa.Array, keys: pa.Array, want: str) -> list[Any]:
    out: list[Any] = []
    for raw, key in zip(raws.to_pylist(), keys.to_pylist(), strict=True):
        found: Any = None
        if raw is not None and key is not None:
            span = SpanProto.FromString(raw)
            for attribute in span.attributes:
                if attribute.key != key:
                    continue
                which = attribute.value.WhichOneof("value")
                if want == "text" and which == "string_value":
                    found = attribute.value.string_value
                elif want == "number" and which == "int_value":
                    found = float(attribute.value.int_value)
                elif want == "number" and which == "double_value":
                    found = attribute.value.double_value
                break
        out.append(found)
    return out


def attr_text(raws: pa.Array, keys: pa.Array) -> pa.Array:
    return pa.array(_values(raws, keys, "text"), pa.string())


def attr_number(raws: pa.Array, keys: pa.Array) -> pa.Array:
    return pa.array(_values(raws, keys, "number"), pa.float64())


def register(connection: Any) -> None:
    """Make the two functions known to a DuckDB connection (and its cursors)."""
    for name, function, result in (
        (TEXT_FUNCTION, attr_text, "VARCHAR"),
        (NUMBER_FUNCTION, attr_number, "DOUBLE"),
    ):
        connection.create_function(
            name, function, ["BLOB", "VARCHAR"], result, type="arrow", side_effects=False
        )

"""The C path of ingest, the one requests take: prepare_request's per-span work done by
``spanstore.decode._otlpscan``.

``spanstore.decode.prepare.prepare_request`` costs tens of microseconds per span, nearly
all of it Python touching fields. :func:`prepare_fast` gives the same :class:`PreparedBatch` for a
serialized request that upb has already parsed (and so validated): the per-resource and
per-scope work (ids, the policy on resources and scopes, service names, resource entity
attributes) stays in Python, on the parsed message, exactly as prepare_request does it;
the C extension walks the request's bytes once more and builds the span, entity and link
columns as Arrow buffers. ``prepare_request`` stays the reference, and the fallback.

When the fast path is used, and when it is not (the request then goes to
``prepare_request`` whole, as parsed from its bytes: if the policy had already changed a
resource or scope, the request is parsed again):

- The extension must have been built and must agree with ``spanstore.decode.prepare`` on the
  columns; otherwise one warning is logged and every request takes the Python path.
- The ingest policy must provably change nothing in any span, event or link, because
  ``prepare_request`` only applies it to spans it flags and we must not apply it
  differently. Proven when: no redaction rule's literal text occurs anywhere in the
  request's bytes (a matching key contains it; a pattern without literal text, or with a
  ``[...]`` set, whose literal the policy does not always get right, means never); and,
  for every span (rejected and duplicate ones too), its serialized length is
  at most ``max_value_bytes`` (no value inside can be longer), it has at most
  ``max_attributes`` attributes, each event and link at most ``max_attributes``, and no
  array or map value occurs deeper than ``max_depth`` (every occurrence counts, even one
  a later value replaces). Resources and scopes get the policy in Python, as before.
- The scanner declines a request it cannot match exactly: groups (wire types 3 and 4),
  an integer-column value given as text that only Python can judge (non-ASCII digits,
  beyond int64), more than 2 GiB in one column, values nested more than 64 deep.

``raw`` then holds the span's bytes as the sender wrote them, minus every trace_id,
span_id and parent_span_id field (prepare_request stores upb's re-serialization minus
the leading ids); reads parse ``raw`` and put the ids back, which gives an equal Span
either way.
"""

from __future__ import annotations

import logging
import weakref
from typing import Final

import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

from spanstore.decode.prepare import (
    _ENTITY_ARROW_SCHEMA,
    _LINK_ARROW_SCHEMA,
    _SPAN_ARROW_SCHEMA,
    SPAN_COLUMNS,
    KeyClassifier,
    PreparedBatch,
    add_resource,
    add_scope,
    reject_message,
)
from spanstore.policy import PolicyEngine
from spanstore.semconv import INT_COLUMNS, STRING_COLUMNS

__all__ = ["available", "disable", "prepare_fast"]

_log = logging.getLogger(__name__)

#: Why the fast path is off in this process, or None.
_unusable: str | None = None
try:
    from spanstore.decode import _otlpscan
except ImportError as exc:  # not built: every request takes the Python path
    _unusable = f"spanstore.decode._otlpscan cannot be imported ({exc})"
else:
    if (
        (*_otlpscan.SPAN_COLUMN_PREFIX, *STRING_COLUMNS, *INT_COLUMNS, "raw") != SPAN_COLUMNS
        or tuple(_ENTITY_ARROW_SCHEMA.names) != _otlpscan.ENTITY_COLUMNS
        or tuple(_LINK_ARROW_SCHEMA.names) != _otlpscan.LINK_COLUMNS
    ):
        _unusable = "spanstore.decode._otlpscan was built for other columns; rebuild it"
_warned = False

#: How the scanner is told what a key is (KeyClassifier.classify's answer, as an int).
_KEY_PLAIN: Final = -1
_KEY_ENTITY: Final = -2
_SEMANTIC_COLUMNS: Final = (*STRING_COLUMNS, *INT_COLUMNS)
_SEMANTIC_INDEX: Final = {column: index for index, column in enumerate(_SEMANTIC_COLUMNS)}
#: Entries per key table, as KeyClassifier bounds its cache.
_TABLE_LIMIT: Final = KeyClassifier._LIMIT

# One C key table per classifier (they differ in their entity keys), gone with it.
_tables: weakref.WeakKeyDictionary[KeyClassifier, _otlpscan.KeyTable] = weakref.WeakKeyDictionary()


def available() -> bool:
    """Whether :func:`prepare_fast` can take the fast path at all in this process."""
    return _unusable is None


def disable(reason: str = "disabled") -> None:
    """Send every request to the Python path from now on (benchmarks, comparisons)."""
    global _unusable, _warned
    _unusable = reason
    _warned = True  # asked for: nothing to warn about


def _key_code(where: tuple[str, int] | None) -> int:
    if where is None:
        return _KEY_PLAIN
    column, rank = where
    if column == "":
        return _KEY_ENTITY
    return _SEMANTIC_INDEX[column] << 8 | rank


def _table_for(keys: KeyClassifier) -> _otlpscan.KeyTable:
    table = _tables.get(keys)
    if table is None:
        table = _otlpscan.KeyTable(len(STRING_COLUMNS), len(INT_COLUMNS), _TABLE_LIMIT)
        _tables[keys] = table
    return table


def _arrow_table(schema: pa.Schema, rows: int, columns: list[_otlpscan.Column]) -> pa.Table:
    arrays = []
    for column_field, (nulls, *buffers) in zip(schema, columns, strict=True):
        arrays.append(
            pa.Array.from_buffers(
                column_field.type,
                rows,
                [None if buffer is None else pa.py_buffer(buffer) for buffer in buffers],
                null_count=nulls,
            )
        )
    return pa.Table.from_arrays(arrays, schema=schema)


def prepare_fast(
    data: bytes,
    request: ExportTraceServiceRequest,
    keys: KeyClassifier,
    policy: PolicyEngine | None = None,
) -> PreparedBatch | None:
    """``prepare_request(request, keys, policy)`` for ``request`` parsed from ``data``, or
    None when that request needs the Python path (``request`` is then as parsed)."""
    global _warned
    if _unusable is not None:
        if not _warned:
            _warned = True
            _log.warning("ingest decodes in Python only (several times slower): %s", _unusable)
        return None
    limits = None
    if policy is not None:
        literals = policy.literals
        if literals is not None and (not literals or any(text in data for text in literals)):
            return None
        if any("[" in pattern for rule in policy.rules for pattern in rule.keys):
            return None  # the literal of a pattern with a [...] set is not always in its keys
        limits = (policy.max_attributes, policy.max_value_bytes, policy.max_depth)

    counts: dict[str, int] = {}
    resources: dict[int, tuple[str, str, bytes]] = {}
    scopes: dict[int, tuple[str, str, str, bytes]] = {}
    scope_rows: list[tuple[int, int, str, tuple[tuple[str, str], ...]]] = []
    changed = False
    classify = keys.classify
    for resource_spans in request.resource_spans:
        resource_id, service, entities, resource_changed = add_resource(
            resource_spans, classify, policy, counts, resources
        )
        changed = changed or resource_changed
        resource_entities = tuple(entities)
        for scope_spans in resource_spans.scope_spans:
            scope_id, scope_changed = add_scope(scope_spans, policy, counts, scopes)
            changed = changed or scope_changed
            scope_rows.append((resource_id, scope_id, service, resource_entities))

    result = _otlpscan.scan(
        data,
        tuple(scope_rows),
        _table_for(keys),
        lambda key: _key_code(classify(key)),
        limits,
    )
    if isinstance(result, str):
        _log.debug("request decoded in Python: %s", result)
        if changed:  # prepare_request applies the policy itself, to the request as sent
            request.ParseFromString(data)
        return None
    (rows, span_columns, entity_rows, entity_columns, link_rows, link_columns) = result[:6]
    span_keys, min_start, max_start, rejected, duplicates, samples = result[6:]
    return PreparedBatch(
        spans=_arrow_table(_SPAN_ARROW_SCHEMA, rows, span_columns),
        entities=_arrow_table(_ENTITY_ARROW_SCHEMA, entity_rows, entity_columns),
        links=_arrow_table(_LINK_ARROW_SCHEMA, link_rows, link_columns),
        resources=resources,
        scopes=scopes,
        span_keys=span_keys,
        min_start=min_start,
        max_start=max_start,
        rejected=rejected,
        duplicates=duplicates,
        messages=[reject_message(*sample) for sample in samples],
        counts=counts,
    )

"""An OTLP request becomes columnar Arrow batches, ready to append: the reference path.

Requests normally take the C scanner (``spanstore.decode.scan``), which gives exactly
what :func:`prepare_request` gives and is tested against it; this Python path is the
reference, and the fallback for what the scanner declines. Touching every attribute
from Python is what costs, so each span is serialized once by upb (that keeps every
field, losslessly, in the ``raw`` column) and Python only reads the scalar fields plus the
attribute *keys*; a value is read only for the few keys the store indexes (semantic
conventions and business entities). Everything here is engine-neutral (protobuf in,
Arrow out): every backend appends the same batches.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, cast

import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans

from spanstore.policy import PolicyEngine
from spanstore.policy import scalar_text as _scalar_text
from spanstore.semconv import INT_COLUMNS, KEY_TO_COLUMN, STRING_COLUMNS, is_entity_key

_MAX_INT64: Final = (1 << 63) - 1
_ZERO_TRACE: Final = bytes(16)
_ZERO_SPAN: Final = bytes(8)
_MAX_REJECT_MESSAGES: Final = 5
_UNSEEN: Final[tuple[str, int]] = ("<unseen>", -1)

_SPAN_ARROW_SCHEMA: Final = pa.schema(
    [
        ("trace_id", pa.binary()),
        ("span_id", pa.binary()),
        ("parent_span_id", pa.binary()),
        ("resource_id", pa.uint64()),
        ("scope_id", pa.uint64()),
        ("service_name", pa.string()),
        ("name", pa.string()),
        ("kind", pa.uint8()),
        ("start_unix_nano", pa.int64()),
        ("duration_ns", pa.int64()),
        ("status_code", pa.uint8()),
        ("status_message", pa.string()),
        ("exception_type", pa.string()),
        ("exception_message", pa.string()),
        *[(column, pa.string()) for column in STRING_COLUMNS],
        *[(column, pa.int64()) for column in INT_COLUMNS],
        ("raw", pa.binary()),
    ]
)
#: The span table's columns, in its order (the C scanner builds them in this order too).
SPAN_COLUMNS: Final[tuple[str, ...]] = tuple(_SPAN_ARROW_SCHEMA.names)
_ENTITY_ARROW_SCHEMA: Final = pa.schema(
    [
        ("key", pa.string()),
        ("value", pa.string()),
        ("trace_id", pa.binary()),
        ("span_id", pa.binary()),
        ("service_name", pa.string()),
        ("start_unix_nano", pa.int64()),
    ]
)
_LINK_ARROW_SCHEMA: Final = pa.schema(
    [
        ("trace_id", pa.binary()),
        ("span_id", pa.binary()),
        ("linked_trace_id", pa.binary()),
        ("linked_span_id", pa.binary()),
        ("start_unix_nano", pa.int64()),
    ]
)


@dataclass(slots=True)
class PreparedBatch:
    """One request's rows, as Arrow tables, plus what was rejected and why."""

    spans: pa.Table
    entities: pa.Table
    links: pa.Table
    resources: dict[int, tuple[str, str, bytes]]  # id -> (service, schema url, raw)
    scopes: dict[int, tuple[str, str, str, bytes]]  # id -> (name, version, schema url, raw)
    span_keys: list[bytes]  # trace_id + span_id per row, for de-duplication
    min_start: int
    max_start: int
    rejected: int = 0
    duplicates: int = 0
    messages: list[str] = field(default_factory=list)
    #: What the ingest policy did: ``redacted:<rule>``, ``truncated_values``,
    #: ``dropped_attributes`` -> how many values.
    counts: dict[str, int] = field(default_factory=dict)
    #: This batch encoded by ``spanstore.wire`` (set by a decoder process; None when the
    #: batch was made or changed here).
    wire: bytes | None = None

    @property
    def size(self) -> int:
        return int(self.spans.num_rows)

    @property
    def nbytes(self) -> int:
        """Memory the batch holds (its Arrow buffers), for the store's queue budget."""
        return int(self.spans.nbytes + self.entities.nbytes + self.links.nbytes)


def _stable_id(*parts: bytes) -> int:
    digest: bytes = hashlib.blake2b(b"\x00".join(parts), digest_size=8).digest()
    value: int = int.from_bytes(digest, "little")
    return value


class KeyClassifier:
    """Remembers, per attribute key, whether the store indexes it and where.

    A dict lookup per attribute is the only per-attribute cost on the hot path.
    """

    _LIMIT: Final = 50_000

    def __init__(self, entity_keys: frozenset[str] = frozenset()) -> None:
        self._entity_keys = entity_keys
        self.cache: dict[str, tuple[str, int] | None] = {}

    def classify(self, key: str) -> tuple[str, int] | None:
        """(column, rank) for semantic columns, ("", 0) for entity keys, None otherwise."""
        try:
            return self.cache[key]
        except KeyError:
            pass
        found: tuple[str, int] | None = KEY_TO_COLUMN.get(key)
        if found is None and is_entity_key(key, self._entity_keys):
            found = ("", 0)
        if len(self.cache) >= self._LIMIT:  # unbounded key cardinality must not grow memory
            self.cache.clear()
        self.cache[key] = found
        return found


def reject_message(name: str, trace_id_len: int, span_id_len: int, parent_len: int) -> str:
    """Why a span with ids of these lengths (or all zero) was rejected."""
    return (
        f"span {name[:60]!r}: trace_id must be 16 bytes and span_id 8 "
        f"(non-zero), parent_span_id empty or 8; got {trace_id_len}, "
        f"{span_id_len}, {parent_len}"
    )


def add_resource(
    resource_spans: ResourceSpans,
    classify: Callable[[str], tuple[str, int] | None],
    policy: PolicyEngine | None,
    counts: dict[str, int],
    resources: dict[int, tuple[str, str, bytes]],
) -> tuple[int, str, list[tuple[str, str]], bool]:
    """A request's resource, after the policy, into ``resources``: its id, service name,
    entity attributes, and whether the policy changed it (in place)."""
    resource = resource_spans.resource
    changed = False
    if policy is not None:
        changed = policy.apply_attributes(resource, counts)
    resource_raw = resource.SerializeToString(deterministic=True)
    resource_id = _stable_id(resource_raw, resource_spans.schema_url.encode())
    service = "unknown_service"
    resource_entities: list[tuple[str, str]] = []
    for kv in resource.attributes:
        if kv.key == "service.name" and kv.value.string_value:
            service = kv.value.string_value
        elif classify(kv.key) == ("", 0):
            text = _scalar_text(kv.value)
            if text:
                resource_entities.append((kv.key, text))
    resources[resource_id] = (service, resource_spans.schema_url, resource_raw)
    return resource_id, service, resource_entities, changed


def add_scope(
    scope_spans: ScopeSpans,
    policy: PolicyEngine | None,
    counts: dict[str, int],
    scopes: dict[int, tuple[str, str, str, bytes]],
) -> tuple[int, bool]:
    """A request's instrumentation scope, after the policy, into ``scopes``: its id and
    whether the policy changed it (in place)."""
    scope = scope_spans.scope
    changed = False
    if policy is not None and scope.attributes:
        changed = policy.apply_attributes(scope, counts)
    scope_raw = scope.SerializeToString(deterministic=True)
    scope_id = _stable_id(scope_raw, scope_spans.schema_url.encode())
    scopes[scope_id] = (scope.name, scope.version, scope_spans.schema_url, scope_raw)
    return scope_id, changed


def prepare_request(
    request: ExportTraceServiceRequest,
    keys: KeyClassifier,
    policy: PolicyEngine | None = None,
) -> PreparedBatch:
    """The request's valid spans as Arrow tables, after ``policy`` (limits, redaction).

    The policy changes the request in place, before anything is read from it.
    """
    cols: dict[str, list[object]] = {name: [] for name in SPAN_COLUMNS}
    trace_ids = cols["trace_id"]
    span_ids = cols["span_id"]
    parents = cols["parent_span_id"]
    resource_ids = cols["resource_id"]
    scope_ids = cols["scope_id"]
    services = cols["service_name"]
    names = cols["name"]
    kinds = cols["kind"]
    starts = cols["start_unix_nano"]
    durations = cols["duration_ns"]
    status_codes = cols["status_code"]
    status_messages = cols["status_message"]
    raws = cols["raw"]
    sparse: dict[str, dict[int, object]] = {c: {} for c in (*STRING_COLUMNS, *INT_COLUMNS)}
    sparse["exception_type"] = {}
    sparse["exception_message"] = {}
    ent: dict[str, list[object]] = {name: [] for name in _ENTITY_ARROW_SCHEMA.names}
    lnk: dict[str, list[object]] = {name: [] for name in _LINK_ARROW_SCHEMA.names}
    resources: dict[int, tuple[str, str, bytes]] = {}
    scopes: dict[int, tuple[str, str, str, bytes]] = {}
    seen: set[bytes] = set()
    span_keys: list[bytes] = []
    rejected = 0
    duplicates_in_request = 0
    messages: list[str] = []
    classify = keys.classify
    known_keys = keys.cache
    ranks: dict[tuple[int, str], int] = {}
    counts: dict[str, int] = {}
    needs_look = policy.span_needs_look if policy is not None else None

    for resource_spans in request.resource_spans:
        resource_id, service, resource_entities, _ = add_resource(
            resource_spans, classify, policy, counts, resources
        )

        for scope_spans in resource_spans.scope_spans:
            scope_id, _ = add_scope(scope_spans, policy, counts, scopes)

            for span in scope_spans.spans:
                trace_id = span.trace_id
                span_id = span.span_id
                parent = span.parent_span_id
                if (
                    len(trace_id) != 16
                    or len(span_id) != 8
                    or trace_id == _ZERO_TRACE
                    or span_id == _ZERO_SPAN
                    or (parent and len(parent) != 8)
                ):
                    rejected += 1
                    if len(messages) < _MAX_REJECT_MESSAGES:
                        messages.append(
                            reject_message(span.name, len(trace_id), len(span_id), len(parent))
                        )
                    continue
                key = trace_id + span_id
                if key in seen:
                    duplicates_in_request += 1
                    continue
                seen.add(key)
                row = len(trace_ids)
                span_keys.append(key)
                raw = span.SerializeToString()
                if (
                    needs_look is not None
                    and needs_look(span, raw)
                    and policy is not None
                    and policy.apply_span(span, counts)
                ):
                    raw = span.SerializeToString()
                # upb writes fields in number order: trace_id (1), span_id (2), then
                # trace_state (3) and parent_span_id (4). The ids have columns, so drop
                # their bytes from `raw` (random bytes do not compress); reads put them back.
                if raw.startswith(b"\x0a\x10" + trace_id + b"\x12\x08" + span_id):
                    raw = raw[28:]
                    if parent and raw.startswith(b"\x22\x08" + parent):
                        raw = raw[10:]
                start = min(span.start_time_unix_nano, _MAX_INT64)
                end = min(span.end_time_unix_nano, _MAX_INT64)
                status = span.status
                trace_ids.append(trace_id)
                span_ids.append(span_id)
                parents.append(parent or None)
                resource_ids.append(resource_id)
                scope_ids.append(scope_id)
                services.append(service)
                names.append(span.name)
                kinds.append(span.kind if 0 <= span.kind <= 5 else 0)
                starts.append(start)
                durations.append(max(0, end - start))
                status_codes.append(status.code if 0 <= status.code <= 2 else 0)
                status_messages.append(status.message or None)
                raws.append(raw)

                # (key, value) of the span's entity attributes, then its resource's
                entities: list[tuple[str, str]] = []
                for kv in span.attributes:
                    attr_key = kv.key
                    where = known_keys.get(attr_key, _UNSEEN)
                    if where is _UNSEEN:
                        where = classify(attr_key)
                    if where is None:
                        continue
                    column, rank = where
                    attr_value = kv.value
                    if column == "":
                        text = attr_value.string_value or _scalar_text(attr_value)
                        if text:
                            entities.append((attr_key, text))
                        continue
                    values_of_column = sparse[column]
                    if row in values_of_column and ranks.get((row, column), 0) <= rank:
                        continue  # an older name of a convention the span also set anew
                    if rank:
                        ranks[(row, column)] = rank
                    if column in INT_COLUMNS:
                        number = attr_value.int_value
                        if number == 0 and attr_value.string_value.isdigit():
                            number = int(attr_value.string_value)
                        values_of_column[row] = number
                    else:
                        values_of_column[row] = attr_value.string_value or _scalar_text(attr_value)
                entities += resource_entities
                for entity_key, entity_value in entities:
                    ent["key"].append(entity_key)
                    ent["value"].append(entity_value)
                    ent["trace_id"].append(trace_id)
                    ent["span_id"].append(span_id)
                    ent["service_name"].append(service)
                    ent["start_unix_nano"].append(start)
                if status.code == 2 and span.events:
                    for event in span.events:
                        if event.name == "exception":
                            for kv in event.attributes:
                                if kv.key == "exception.type":
                                    sparse["exception_type"][row] = kv.value.string_value
                                elif kv.key == "exception.message":
                                    sparse["exception_message"][row] = kv.value.string_value
                            break
                if span.links:
                    for link in span.links:
                        if len(link.trace_id) != 16 or len(link.span_id) != 8:
                            continue
                        lnk["trace_id"].append(trace_id)
                        lnk["span_id"].append(span_id)
                        lnk["linked_trace_id"].append(link.trace_id)
                        lnk["linked_span_id"].append(link.span_id)
                        lnk["start_unix_nano"].append(start)

    n = len(trace_ids)
    start_times = cast(list[int], starts)
    for column, values in sparse.items():
        dense: list[object] = [None] * n
        for row, value in values.items():
            dense[row] = value
        cols[column] = dense
    return PreparedBatch(
        spans=pa.Table.from_pydict(cols, schema=_SPAN_ARROW_SCHEMA),
        entities=pa.Table.from_pydict(ent, schema=_ENTITY_ARROW_SCHEMA),
        links=pa.Table.from_pydict(lnk, schema=_LINK_ARROW_SCHEMA),
        resources=resources,
        scopes=scopes,
        span_keys=span_keys,
        min_start=min(start_times, default=0),
        max_start=max(start_times, default=0),
        rejected=rejected,
        duplicates=duplicates_in_request,
        messages=messages,
        counts=counts,
    )

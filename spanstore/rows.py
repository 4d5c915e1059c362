"""Query rows back into the model: spans, OTLP requests, entities, frames.

Written once for every dialect (``spanstore.dialect``): a row's meaning depends on its
columns, not on the engine that produced it. Rows arrive as Arrow tables with strings as
text and ids and ``raw`` protobuf as bytes (hex text where a layout stores ids as text).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

import polars as pl
import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanProto

from spanstore.frame import SLO_SPANS_SCHEMA, SPAN_KIND_NAMES, STATUS_CODE_NAMES
from spanstore.model import (
    SPAN_KINDS,
    AttrValue,
    EntityKey,
    EntityValue,
    Span,
    SpanEvent,
    SpanKind,
    SpanLink,
    StatusCode,
)
from spanstore.otlp import attributes_to_dict, span_from_proto

__all__ = [
    "KIND_SPELLINGS",
    "STATUS_SPELLINGS",
    "References",
    "collect_entities",
    "columns",
    "entity_key",
    "entity_value",
    "frame",
    "hex_id",
    "references",
    "request_from_protobuf_rows",
    "request_from_spans",
    "slo_spans_frame",
    "span_from_columns",
    "spans_from_protobuf_rows",
]


def hex_id(value: bytes | str) -> str:
    """An id as the model spells it (lower-case hex), from bytes or hex text."""
    return value.hex() if isinstance(value, bytes) else value


def columns(table: pa.Table, *names: str) -> Iterator[tuple[Any, ...]]:
    """The named columns, row by row (column-wise conversion: one list per column)."""
    return zip(*(table.column(name).to_pylist() for name in names), strict=True)


def frame(table: pa.Table, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """A query's rows as a polars frame of exactly ``schema`` (empty: no columns came)."""
    if table.num_columns == 0:
        return pl.DataFrame(schema=dict(schema))
    result = pl.from_arrow(table.select(list(schema)))
    assert isinstance(result, pl.DataFrame)
    return result.cast(dict(schema))  # type: ignore[arg-type]


def slo_spans_frame(table: pa.Table) -> pl.DataFrame:
    """``slo_spans`` rows as ``SLO_SPANS_SCHEMA``; kind and status arrive as the stored
    codes (named here, unknown codes as the default) or already as names."""
    if table.num_columns == 0:
        return pl.DataFrame(schema=SLO_SPANS_SCHEMA)
    result = pl.from_arrow(table.select(list(SLO_SPANS_SCHEMA)))
    assert isinstance(result, pl.DataFrame)
    if result.schema["kind"].is_integer():
        kind, status = SLO_SPANS_SCHEMA["kind"], SLO_SPANS_SCHEMA["status_code"]
        result = result.with_columns(
            pl.col("kind").replace_strict(
                dict(enumerate(SPAN_KIND_NAMES)), default="UNSPECIFIED", return_dtype=kind
            ),
            pl.col("status_code").replace_strict(
                dict(enumerate(STATUS_CODE_NAMES)), default="UNSET", return_dtype=status
            ),
        )
    return result.cast(SLO_SPANS_SCHEMA)  # type: ignore[arg-type]


def entity_key(row: Mapping[str, Any]) -> EntityKey:
    return EntityKey(
        key=row["key"],
        values=int(row["values"]),
        spans=int(row["spans"]),
        traces=int(row["traces"]),
        services=int(row["services"]),
        recurring_values=int(row.get("recurring_values") or 0),
    )


def entity_value(row: Mapping[str, Any]) -> EntityValue:
    return EntityValue(
        value=row["value"],
        spans=int(row["spans"]),
        traces=int(row["traces"]),
        first_unix_nano=int(row["first_unix_nano"]),
        last_unix_nano=int(row["last_unix_nano"]),
    )


def collect_entities(table: pa.Table, out: dict[str, dict[str, list[str]]]) -> None:
    """Rows of (trace_id, key, trace_values) into trace -> key -> values, column-wise
    (a dict per row costs seconds on a day's traces)."""
    if not table.num_rows:
        return
    for trace_id, key, values in columns(table, "trace_id", "key", "trace_values"):
        out.setdefault(hex_id(trace_id), {})[key] = values


# --------------------------------------------------------------------------- protobuf rows

#: resource id -> (raw Resource, schema url); scope id -> (name, version, raw, schema url)
References = tuple[dict[int, tuple[bytes, str]], dict[int, tuple[str, str, bytes, str]]]


def references(table: pa.Table) -> References:
    """``refs_by_id`` rows: the resources and scopes stored once and referred to by id."""
    resources: dict[int, tuple[bytes, str]] = {}
    scopes: dict[int, tuple[str, str, bytes, str]] = {}
    for what, ref, raw, url, name, version in columns(
        table, "what", "id", "raw", "schema_url", "name", "version"
    ):
        if what == "resource":
            resources[ref] = (raw, url)
        else:
            scopes[ref] = (name, version, raw, url)
    return resources, scopes


def spans_from_protobuf_rows(table: pa.Table, refs: References) -> list[Span]:
    """``spans_of_traces`` rows that keep each span's protobuf (ids stripped) as spans."""
    resources, scopes = refs
    resource_attrs: dict[int, dict[str, AttrValue]] = {
        rid: attributes_to_dict(Resource.FromString(raw).attributes)
        for rid, (raw, _) in resources.items()
    }
    out: list[Span] = []
    for trace_id, span_id, parent, rid, sid, service, raw in columns(
        table, "trace_id", "span_id", "parent_span_id", "resource_id", "scope_id",
        "service_name", "raw",
    ):  # fmt: skip
        proto = SpanProto.FromString(raw)
        proto.trace_id = trace_id
        proto.span_id = span_id
        if parent:
            proto.parent_span_id = parent
        scope_name, scope_version, _, _ = scopes.get(sid, ("", "", b"", ""))
        out.append(
            span_from_proto(proto, service, resource_attrs.get(rid, {}), scope_name, scope_version)
        )
    return out


def request_from_protobuf_rows(table: pa.Table, refs: References) -> ExportTraceServiceRequest:
    """``trace_rows`` as the OTLP request that was stored (lossless)."""
    resources, scopes = refs
    request = ExportTraceServiceRequest()
    groups: dict[tuple[int, int], Any] = {}
    by_resource: dict[int, Any] = {}
    for trace_id, span_id, parent, rid, sid, raw in columns(
        table, "trace_id", "span_id", "parent_span_id", "resource_id", "scope_id", "raw"
    ):
        if rid not in by_resource:
            resource_spans = request.resource_spans.add()
            raw_resource, schema_url = resources.get(rid, (b"", ""))
            resource_spans.resource.ParseFromString(raw_resource)
            resource_spans.schema_url = schema_url
            by_resource[rid] = resource_spans
        if (rid, sid) not in groups:
            scope_spans = by_resource[rid].scope_spans.add()
            _, _, raw_scope, scope_url = scopes.get(sid, ("", "", b"", ""))
            scope_spans.scope.ParseFromString(raw_scope)
            scope_spans.schema_url = scope_url
            groups[(rid, sid)] = scope_spans
        span = groups[(rid, sid)].spans.add()
        span.ParseFromString(raw)
        span.trace_id = trace_id
        span.span_id = span_id
        if parent:
            span.parent_span_id = parent
    return request


# --------------------------------------------------------------------------- column rows


def _enum_spellings(prefix: str, names: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in names:
        for spelling in (name, name.capitalize(), f"{prefix}{name}"):
            out[spelling] = name
    return out


#: Enum values as text have been written two ways: the proto names (``SPAN_KIND_SERVER``,
#: ``STATUS_CODE_ERROR``, collector-contrib's ``traceutil``) and pdata's ``String()``
#: (``Server``, ``Error``). Both, and the bare upper-case names, are read.
KIND_SPELLINGS: Final = _enum_spellings("SPAN_KIND_", SPAN_KINDS)
STATUS_SPELLINGS: Final = _enum_spellings("STATUS_CODE_", ("UNSET", "OK", "ERROR"))
#: Where an exporter without scope columns copied the scope into the span's attributes.
SCOPE_ATTRIBUTE_KEYS: Final = ("otel.scope.name", "otel.scope.version")


def span_from_columns(row: Mapping[str, Any]) -> Span:
    """A span kept as one column per field (the OpenTelemetry exporter's table)."""
    attributes: dict[str, AttrValue] = dict(row["attributes"])
    scope_name = row["scope_name"] or ""
    scope_version = row["scope_version"] or ""
    # The exporter copied the scope into the span's attributes (older versions had no
    # Scope columns); those copies are not the application's attributes.
    for key, value in zip(SCOPE_ATTRIBUTE_KEYS, (scope_name, scope_version), strict=True):
        if key in attributes and attributes[key] == value:
            del attributes[key]
    start = int(row["start_unix_nano"])
    kind: SpanKind = KIND_SPELLINGS.get(row["kind"], "UNSPECIFIED")  # type: ignore[assignment]
    status: StatusCode = STATUS_SPELLINGS.get(row["status_code"], "UNSET")  # type: ignore[assignment]
    return Span(
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        parent_span_id=row["parent_span_id"] or None,
        name=row["name"],
        kind=kind,
        start_unix_nano=start,
        end_unix_nano=start + int(row["duration_ns"]),
        service_name=row["service_name"] or "unknown_service",
        status_code=status,
        status_message=row["status_message"],
        attributes=attributes,
        resource_attributes=dict(row["resource_attributes"]),
        events=tuple(
            SpanEvent(name=name, time_unix_nano=int(at), attributes=dict(attrs))
            for at, name, attrs in zip(
                row["event_times"], row["event_names"], row["event_attributes"], strict=False
            )
        ),
        links=tuple(
            SpanLink(trace_id=tid, span_id=sid, trace_state=state, attributes=dict(attrs))
            for tid, sid, state, attrs in zip(
                row["link_trace_ids"],
                row["link_span_ids"],
                row["link_trace_states"],
                row["link_attributes"],
                strict=False,
            )
        ),
        scope_name=scope_name,
        scope_version=scope_version,
        trace_state=row["trace_state"],
    )


def _any_value(value: AttrValue, out: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, int):
        out.int_value = value
    elif isinstance(value, float):
        out.double_value = value
    elif isinstance(value, bytes):
        out.bytes_value = value
    elif isinstance(value, list):
        out.array_value.SetInParent()
        for item in value:
            _any_value(item, out.array_value.values.add())
    elif isinstance(value, dict):
        out.kvlist_value.SetInParent()
        for key, item in value.items():
            _any_value(item, out.kvlist_value.values.add(key=key).value)
    else:
        out.string_value = str(value)


def _set_attributes(target: Any, attributes: Mapping[str, AttrValue]) -> None:
    for key, value in attributes.items():
        kv: KeyValue = target.add(key=key)
        _any_value(value, kv.value)


def request_from_spans(spans: Sequence[Span]) -> ExportTraceServiceRequest:
    """Model spans as an OTLP request, grouped by resource and scope (the inverse of
    ``spans_from_request`` for what the model keeps)."""
    request = ExportTraceServiceRequest()
    resources: dict[tuple[str, tuple[tuple[str, str], ...]], Any] = {}
    scopes: dict[tuple[int, str, str], Any] = {}
    for span in spans:
        rkey = (
            span.service_name,
            tuple(sorted((k, repr(v)) for k, v in span.resource_attributes.items())),
        )
        if rkey not in resources:
            resource_spans = request.resource_spans.add()
            _set_attributes(resource_spans.resource.attributes, span.resource_attributes)
            resources[rkey] = resource_spans
        resource_spans = resources[rkey]
        skey = (id(resource_spans), span.scope_name, span.scope_version)
        if skey not in scopes:
            scope_spans = resource_spans.scope_spans.add()
            scope_spans.scope.name = span.scope_name
            scope_spans.scope.version = span.scope_version
            scopes[skey] = scope_spans
        proto = scopes[skey].spans.add()
        proto.trace_id = bytes.fromhex(span.trace_id)
        proto.span_id = bytes.fromhex(span.span_id)
        if span.parent_span_id:
            proto.parent_span_id = bytes.fromhex(span.parent_span_id)
        proto.trace_state = span.trace_state
        proto.name = span.name
        proto.kind = SPAN_KINDS.index(span.kind)
        proto.start_time_unix_nano = span.start_unix_nano
        proto.end_time_unix_nano = span.end_unix_nano
        proto.flags = span.flags
        _set_attributes(proto.attributes, span.attributes)
        for event in span.events:
            proto_event = proto.events.add(name=event.name, time_unix_nano=event.time_unix_nano)
            _set_attributes(proto_event.attributes, event.attributes)
        for link in span.links:
            with contextlib.suppress(ValueError):
                proto_link = proto.links.add(
                    trace_id=bytes.fromhex(link.trace_id),
                    span_id=bytes.fromhex(link.span_id),
                    trace_state=link.trace_state,
                )
                _set_attributes(proto_link.attributes, link.attributes)
        proto.status.code = ("UNSET", "OK", "ERROR").index(span.status_code)
        proto.status.message = span.status_message
    return request

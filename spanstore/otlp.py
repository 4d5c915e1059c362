"""OTLP codecs: the OTLP/JSON encoding to and from protobuf, and protobuf to the read model.

OTLP/JSON is proto3 JSON with three differences (OTLP specification, "JSON Protobuf
Encoding"): trace and span ids are hex strings instead of base64, enums are integers, and
keys are lowerCamelCase (receivers also accept the original field names). protobuf's
``json_format`` handles the rest (int64 as string or number, unknown fields), so this
module only rewrites the id fields between hex and base64.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Iterator
from typing import Any, Final

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1 import trace_pb2

from spanstore.model import (
    SPAN_KINDS,
    STATUS_CODES,
    AttrValue,
    Span,
    SpanEvent,
    SpanLink,
)

__all__ = [
    "OtlpJsonError",
    "anyvalue_to_python",
    "attributes_to_dict",
    "request_from_json",
    "request_to_json",
    "rewrite_hex_ids",
    "service_name_of",
    "spans_from_request",
]

_ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")
_ID_LENGTHS = {"traceId": 16, "trace_id": 16}


class OtlpJsonError(ValueError):
    """The body is not valid OTLP/JSON; the message says where."""


def _hex_to_b64(value: object, where: str, field: str) -> str:
    if not isinstance(value, str):
        raise OtlpJsonError(f"{where}.{field}: expected a hex string, got {type(value).__name__}")
    text = value.strip()
    if len(text) % 2:
        # Jaeger and some SDKs drop a leading zero; ids are fixed-width, so pad back.
        text = "0" + text
    want = _ID_LENGTHS.get(field, 8) * 2
    if field in _ID_LENGTHS and 0 < len(text) < want:
        text = text.rjust(want, "0")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise OtlpJsonError(f"{where}.{field}: {value!r} is not hex") from None
    return base64.b64encode(raw).decode("ascii")


def _rewrite_ids(obj: Any, where: str) -> Any:
    """Copy of an OTLP/JSON tree with hex ids turned into proto3-JSON base64."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for key, value in obj.items():
            if key in _ID_FIELDS and value is not None:
                out[key] = _hex_to_b64(value, where, key) if value != "" else ""
            else:
                out[key] = _rewrite_ids(value, f"{where}.{key}")
        return out
    if isinstance(obj, list):
        return [_rewrite_ids(item, f"{where}[{i}]") for i, item in enumerate(obj)]
    return obj


def rewrite_hex_ids(doc: Any) -> Any:
    """An OTLP/JSON tree (any signal) with its hex ids turned into proto3-JSON base64, for
    ``json_format.ParseDict``; raises :class:`OtlpJsonError` naming a bad id."""
    return _rewrite_ids(doc, "$")


def request_from_json(doc: Any) -> ExportTraceServiceRequest:
    """Parse an OTLP/JSON ``TracesData`` / ``ExportTraceServiceRequest`` document."""
    if not isinstance(doc, dict):
        raise OtlpJsonError("expected a JSON object with a resourceSpans array")
    rewritten = _rewrite_ids(doc, "$")
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(rewritten, request, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise OtlpJsonError(str(exc).splitlines()[0]) from None
    return request


def _b64_to_hex(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {
            k: (
                base64.b64decode(v).hex()
                if k in _ID_FIELDS and isinstance(v, str)
                else _b64_to_hex(v)
            )
            for k, v in tree.items()
        }
    if isinstance(tree, list):
        return [_b64_to_hex(v) for v in tree]
    return tree


def request_to_json(request: ExportTraceServiceRequest | trace_pb2.TracesData) -> dict[str, Any]:
    """The OTLP/JSON encoding of a request (hex ids, integer enums)."""
    tree = json_format.MessageToDict(request, use_integers_for_enums=True)
    result: dict[str, Any] = _b64_to_hex(tree)
    return result


# --------------------------------------------------------------------------- read model


def anyvalue_to_python(value: AnyValue, depth: int = 0) -> AttrValue:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [anyvalue_to_python(v, depth + 1) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: anyvalue_to_python(kv.value, depth + 1) for kv in value.kvlist_value.values}
    result: AttrValue = getattr(value, kind)
    return result


def attributes_to_dict(attributes: Iterable[KeyValue]) -> dict[str, AttrValue]:
    # Scalars (most values) are read without a call: this runs for every span read.
    out: dict[str, AttrValue] = {}
    for kv in attributes:
        value = kv.value
        kind = value.WhichOneof("value")
        out[kv.key] = getattr(value, kind) if kind in _SCALAR_KINDS else anyvalue_to_python(value)
    return out


_SCALAR_KINDS: Final = frozenset(
    {"string_value", "bool_value", "int_value", "double_value", "bytes_value"}
)


def service_name_of(resource_attributes: Iterable[KeyValue]) -> str:
    for kv in resource_attributes:
        if kv.key == "service.name" and kv.value.string_value:
            return kv.value.string_value
    return "unknown_service"


def _id_hex(raw: bytes) -> str:
    return binascii.hexlify(raw).decode("ascii")


def span_from_proto(
    span: trace_pb2.Span,
    service_name: str,
    resource_attributes: dict[str, AttrValue],
    scope_name: str = "",
    scope_version: str = "",
) -> Span:
    status_code = span.status.code
    return Span(
        trace_id=_id_hex(span.trace_id),
        span_id=_id_hex(span.span_id),
        parent_span_id=_id_hex(span.parent_span_id) if span.parent_span_id else None,
        name=span.name,
        kind=SPAN_KINDS[span.kind] if 0 <= span.kind < len(SPAN_KINDS) else "UNSPECIFIED",
        start_unix_nano=span.start_time_unix_nano,
        end_unix_nano=span.end_time_unix_nano,
        service_name=service_name,
        status_code=STATUS_CODES[status_code] if 0 <= status_code < 3 else "UNSET",
        status_message=span.status.message,
        attributes=attributes_to_dict(span.attributes),
        resource_attributes=resource_attributes,
        events=tuple(
            SpanEvent(
                name=e.name,
                time_unix_nano=e.time_unix_nano,
                attributes=attributes_to_dict(e.attributes),
                dropped_attributes_count=e.dropped_attributes_count,
            )
            for e in span.events
        ),
        links=tuple(
            SpanLink(
                trace_id=_id_hex(link.trace_id),
                span_id=_id_hex(link.span_id),
                trace_state=link.trace_state,
                attributes=attributes_to_dict(link.attributes),
                dropped_attributes_count=link.dropped_attributes_count,
                flags=link.flags,
            )
            for link in span.links
        ),
        scope_name=scope_name,
        scope_version=scope_version,
        trace_state=span.trace_state,
        flags=span.flags,
        dropped_attributes_count=span.dropped_attributes_count,
        dropped_events_count=span.dropped_events_count,
        dropped_links_count=span.dropped_links_count,
    )


def spans_from_request(request: ExportTraceServiceRequest | trace_pb2.TracesData) -> Iterator[Span]:
    """Every span of a request as read-model spans (used by tests and file tools)."""
    for resource_spans in request.resource_spans:
        resource_attributes = attributes_to_dict(resource_spans.resource.attributes)
        service = service_name_of(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield span_from_proto(
                    span,
                    service,
                    resource_attributes,
                    scope_spans.scope.name,
                    scope_spans.scope.version,
                )

"""Trace files for ``seqtrace load``: OTLP/JSON, OTLP protobuf and Jaeger JSON, to OTLP requests.

Files are recognised by their content (gzip magic, JSON shape, protobuf tag), not by
their name, so a ``.json`` that is really a Jaeger download or a gzipped file without
``.gz`` load all the same. Jaeger JSON is converted to OTLP the way Jaeger's own
OTLP translator does; see ``docs/collector.md`` for the field mapping.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import os
import zlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1 import trace_pb2

from spanstore.otlp import OtlpJsonError, request_from_json

__all__ = [
    "LogFileFound",
    "TraceFileError",
    "batched",
    "jaeger_trace_to_request",
    "read_log_file",
    "read_trace_file",
    "requests_from_json",
]

_EXPECTED = (
    "expected OTLP/JSON (an object with resourceSpans, optionally inside Jaeger's "
    '{"result": ...}), JSON lines of those, Jaeger JSON ({"data": [trace, ...]} or '
    "{traceID, spans, processes}), or OTLP protobuf TracesData; gzip-compressed or not"
)

_SPAN_KINDS = {
    "internal": trace_pb2.Span.SPAN_KIND_INTERNAL,
    "server": trace_pb2.Span.SPAN_KIND_SERVER,
    "client": trace_pb2.Span.SPAN_KIND_CLIENT,
    "producer": trace_pb2.Span.SPAN_KIND_PRODUCER,
    "consumer": trace_pb2.Span.SPAN_KIND_CONSUMER,
}
_STATUS_CODES = {
    "ok": trace_pb2.Status.STATUS_CODE_OK,
    "error": trace_pb2.Status.STATUS_CODE_ERROR,
    "unset": trace_pb2.Status.STATUS_CODE_UNSET,
}
_SCOPE_NAME_TAGS = ("otel.scope.name", "otel.library.name")
_SCOPE_VERSION_TAGS = ("otel.scope.version", "otel.library.version")
#: Tags that Jaeger's OTLP translator turns back into span fields; they are not kept
#: as attributes, or each span would say the same thing twice.
_FIELD_TAGS = frozenset(
    {
        "span.kind",
        "otel.status_code",
        "otel.status_description",
        "w3c.tracestate",
        *_SCOPE_NAME_TAGS,
        *_SCOPE_VERSION_TAGS,
    }
)


class TraceFileError(ValueError):
    """A file that cannot be loaded; the message is one line and names the file."""


class LogFileFound(TraceFileError):
    """The file holds OTLP log records, not spans: load it with :func:`read_log_file`."""


def read_log_file(path: str | os.PathLike[str]) -> list[ExportLogsServiceRequest]:
    """The requests of an OTLP/JSON logs file (``{"resourceLogs": [...]}``, one document
    or JSON lines, gzip-compressed or not)."""
    from google.protobuf import json_format

    from spanstore.otlp import rewrite_hex_ids

    name = os.fspath(path)
    try:
        data = Path(name).read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise TraceFileError(f"{name}: cannot read: {exc}") from None
    try:
        docs = [orjson.loads(data)]
    except orjson.JSONDecodeError:
        try:
            docs = [orjson.loads(line) for line in data.splitlines() if line.strip()]
        except orjson.JSONDecodeError as exc:
            raise TraceFileError(f"{name}: malformed JSON: {exc}") from None
    requests: list[ExportLogsServiceRequest] = []
    for doc in docs:
        if not isinstance(doc, dict) or not ("resourceLogs" in doc or "resource_logs" in doc):
            raise TraceFileError(f"{name}: expected OTLP/JSON logs (an object with resourceLogs)")
        request = ExportLogsServiceRequest()
        try:
            json_format.ParseDict(rewrite_hex_ids(doc), request, ignore_unknown_fields=True)
        except (json_format.ParseError, OtlpJsonError) as exc:
            raise TraceFileError(f"{name}: invalid OTLP/JSON logs: {exc}") from None
        requests.append(request)
    return requests


def read_trace_file(path: str | os.PathLike[str]) -> list[ExportTraceServiceRequest]:
    """Every request in a trace file (one per JSON object, Jaeger trace or protobuf file)."""
    name = os.fspath(path)
    try:
        data = Path(name).read_bytes()
    except OSError as exc:
        raise TraceFileError(f"{name}: cannot read: {exc.strerror or exc}") from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise TraceFileError(f"{name}: corrupt gzip data: {exc}") from None
    return _parse_bytes(data, name)


def batched(
    requests: Iterable[ExportTraceServiceRequest], max_spans: int = 8192
) -> Iterator[ExportTraceServiceRequest]:
    """Merge small requests into requests of up to ``max_spans`` spans (a bigger one
    passes whole), so loading a file of many small traces costs few store commits."""
    batch = ExportTraceServiceRequest()
    size = 0
    for request in requests:
        spans = sum(len(s.spans) for rs in request.resource_spans for s in rs.scope_spans)
        if size and size + spans > max_spans:
            yield batch
            batch, size = ExportTraceServiceRequest(), 0
        batch.resource_spans.extend(request.resource_spans)
        size += spans
    if batch.resource_spans:
        yield batch


def _parse_bytes(data: bytes, name: str) -> list[ExportTraceServiceRequest]:
    text_start = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if text_start in (b"{", b"["):
        return _parse_json_text(data.removeprefix(b"\xef\xbb\xbf"), name)
    if not data.strip():
        if name.endswith((".pb", ".binpb")):
            return []  # an empty TracesData serialises to zero bytes
        raise TraceFileError(f"{name}: empty file; {_EXPECTED}")
    # A TracesData / ExportTraceServiceRequest has one field, resource_spans (1, LEN):
    # every non-empty one starts with the tag byte 0x0a.
    if data[:1] == b"\x0a":
        try:
            request = ExportTraceServiceRequest.FromString(data)
        except DecodeError:
            request = None
        if request is not None and request.resource_spans:
            return [request]
        raise TraceFileError(f"{name}: not a valid OTLP protobuf TracesData; {_EXPECTED}")
    raise TraceFileError(f"{name}: not a trace file; {_EXPECTED}")


def _parse_json_text(data: bytes, name: str) -> list[ExportTraceServiceRequest]:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as whole_error:
        lines = [line for line in data.splitlines() if line.strip()]
        if len(lines) < 2:
            raise TraceFileError(f"{name}: malformed JSON: {whole_error}") from None
        # JSON lines: one document per line (the Collector's file exporter, Jaeger v3
        # streaming responses).
        requests: list[ExportTraceServiceRequest] = []
        for number, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                item = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise TraceFileError(f"{name}:{number}: malformed JSON line: {exc}") from None
            requests.extend(_from_json(item, f"{name}:{number}"))
        return requests
    return _from_json(doc, name)


def _from_json(doc: Any, where: str) -> list[ExportTraceServiceRequest]:
    try:
        return requests_from_json(doc)
    except TraceFileError as exc:
        raise type(exc)(f"{where}: {exc}") from None


def requests_from_json(doc: Any) -> list[ExportTraceServiceRequest]:
    """Requests from one parsed JSON document of any supported shape."""
    if isinstance(doc, list):
        out: list[ExportTraceServiceRequest] = []
        for index, item in enumerate(doc):
            try:
                out.extend(requests_from_json(item))
            except TraceFileError as exc:
                raise TraceFileError(f"[{index}]: {exc}") from None
        return out
    if not isinstance(doc, dict):
        raise TraceFileError(f"a JSON {type(doc).__name__} is not a trace document; {_EXPECTED}")
    if "resourceLogs" in doc or "resource_logs" in doc:
        raise LogFileFound("an OTLP/JSON logs document (read it with read_log_file)")
    if "resourceSpans" in doc or "resource_spans" in doc:
        try:
            return [request_from_json(doc)]
        except OtlpJsonError as exc:
            raise TraceFileError(f"invalid OTLP/JSON: {exc}") from None
    if isinstance(doc.get("result"), dict):  # Jaeger API v3 envelope
        return requests_from_json(doc["result"])
    if isinstance(doc.get("data"), list):  # Jaeger UI / API v1 download: {"data": [...]}
        requests = []
        for index, trace in enumerate(doc["data"]):
            if not isinstance(trace, dict):
                raise TraceFileError(f"data[{index}]: expected a Jaeger trace object")
            requests.append(jaeger_trace_to_request(trace, f"data[{index}]"))
        return requests
    if isinstance(doc.get("spans"), list) and ("processes" in doc or "traceID" in doc):
        return [jaeger_trace_to_request(doc)]
    keys = ", ".join(sorted(map(str, doc))[:6]) or "none"
    raise TraceFileError(f"unrecognised JSON object (keys: {keys}); {_EXPECTED}")


# ------------------------------------------------------------------------------ Jaeger


def jaeger_trace_to_request(
    trace: Mapping[str, Any], where: str = "trace"
) -> ExportTraceServiceRequest:
    """One Jaeger JSON trace (``{traceID, spans, processes}``) as an OTLP request.

    Processes become resources (``serviceName`` -> ``service.name``, process tags ->
    resource attributes); spans are grouped by process, then by instrumentation scope.
    """
    processes = trace.get("processes") or {}
    if not isinstance(processes, dict):
        raise TraceFileError(f"{where}.processes: expected an object")
    spans = trace.get("spans")
    if not isinstance(spans, list):
        raise TraceFileError(f"{where}.spans: expected an array")
    request = ExportTraceServiceRequest()
    resources: dict[str, trace_pb2.ResourceSpans] = {}
    scopes: dict[tuple[str, str, str], trace_pb2.ScopeSpans] = {}
    for index, jspan in enumerate(spans):
        at = f"{where}.spans[{index}]"
        if not isinstance(jspan, dict):
            raise TraceFileError(f"{at}: expected an object")
        process_key, process = _process_of(jspan, processes, at)
        resource_spans = resources.get(process_key)
        if resource_spans is None:
            resource_spans = request.resource_spans.add()
            resource_spans.resource.CopyFrom(_resource(process, f"{at}.process"))
            resources[process_key] = resource_spans
        span, scope_name, scope_version = _span(jspan, trace.get("traceID"), at)
        scope_key = (process_key, scope_name, scope_version)
        scope_spans = scopes.get(scope_key)
        if scope_spans is None:
            scope_spans = resource_spans.scope_spans.add()
            scope_spans.scope.name = scope_name
            scope_spans.scope.version = scope_version
            scopes[scope_key] = scope_spans
        scope_spans.spans.append(span)
    return request


def _process_of(
    jspan: Mapping[str, Any], processes: Mapping[str, Any], at: str
) -> tuple[str, Mapping[str, Any]]:
    inline = jspan.get("process")
    if isinstance(inline, dict):
        # Older exports embed the process in each span; equal processes share a resource.
        return "inline:" + orjson.dumps(inline, option=orjson.OPT_SORT_KEYS).decode(), inline
    process_id = jspan.get("processID")
    process = processes.get(process_id) if isinstance(process_id, str) else None
    if process is None:
        return "none", {}
    if not isinstance(process, dict):
        raise TraceFileError(f"{at}: process {process_id!r} is not an object")
    return f"id:{process_id}", process


def _resource(process: Mapping[str, Any], at: str) -> Resource:
    resource = Resource()
    service = process.get("serviceName")
    if isinstance(service, str) and service:
        resource.attributes.add(key="service.name").value.string_value = service
    for tag_index, tag in enumerate(_tags(process.get("tags"), f"{at}.tags")):
        if tag.get("key") == "service.name" and service:
            continue
        kv = resource.attributes.add()
        _set_tag(kv, tag, f"{at}.tags[{tag_index}]")
    return resource


def _tags(tags: Any, at: str) -> list[Mapping[str, Any]]:
    if tags is None:
        return []
    if not isinstance(tags, list) or not all(isinstance(t, dict) for t in tags):
        raise TraceFileError(f"{at}: expected an array of {{key, type, value}} objects")
    return tags


def _set_tag(kv: KeyValue, tag: Mapping[str, Any], at: str) -> None:
    key = tag.get("key")
    if not isinstance(key, str):
        raise TraceFileError(f"{at}: tag without a string key")
    kv.key = key
    _set_value(kv.value, tag.get("type"), tag.get("value"))


def _set_value(value: AnyValue, kind: Any, raw: Any) -> None:
    """A Jaeger tag value, typed by its ``type`` ("string", "bool", "int64", "float64",
    "binary"); a value that does not fit its declared type is kept as a string."""
    kind = str(kind or "string").lower()
    try:
        if kind == "bool":
            value.bool_value = raw if isinstance(raw, bool) else str(raw).lower() == "true"
            return
        if kind == "int64" and not isinstance(raw, bool):
            value.int_value = int(raw)
            return
        if kind == "float64" and not isinstance(raw, bool):
            value.double_value = float(raw)
            return
        if kind == "binary" and isinstance(raw, str):
            value.bytes_value = base64.b64decode(raw, validate=True)
            return
    except (ValueError, TypeError, OverflowError, binascii.Error):
        pass
    value.string_value = raw if isinstance(raw, str) else _json_text(raw)


def _json_text(raw: Any) -> str:
    try:
        return orjson.dumps(raw).decode()
    except TypeError:  # orjson refuses integers past 64 bits; the standard library does not
        return json.dumps(raw, ensure_ascii=False, separators=(",", ":"))


def _hex_id(raw: Any, size: int, at: str) -> bytes:
    """A Jaeger id as bytes. Jaeger writes ids without leading zeros (31 hex digits for
    a 128-bit id whose first digit is 0, 16 for a 64-bit trace id): pad to full width."""
    if not isinstance(raw, str) or not raw.strip():
        raise TraceFileError(f"{at}: expected a hex id string, got {raw!r}")
    text = raw.strip().lower()
    if len(text) > size * 2:
        raise TraceFileError(f"{at}: {raw!r} is longer than {size * 2} hex digits")
    try:
        return bytes.fromhex(text.rjust(size * 2, "0"))
    except ValueError:
        raise TraceFileError(f"{at}: {raw!r} is not hex") from None


_MAX_MICROS = (2**64 - 1) // 1000 // 2  # start + duration must fit OTLP's fixed64 nanos


def _micros(raw: Any, at: str) -> int:
    value: int | None = None
    if isinstance(raw, int | float | str) and not isinstance(raw, bool):
        try:
            value = int(raw)
        except (ValueError, OverflowError):  # "abc", inf, nan
            value = None
    if value is None or not 0 <= value <= _MAX_MICROS:
        raise TraceFileError(f"{at}: expected microseconds as a non-negative number, got {raw!r}")
    return value


def _span(
    jspan: Mapping[str, Any], trace_level_id: Any, at: str
) -> tuple[trace_pb2.Span, str, str]:
    span = trace_pb2.Span()
    trace_id_text = jspan.get("traceID", trace_level_id)
    span.trace_id = _hex_id(trace_id_text, 16, f"{at}.traceID")
    span.span_id = _hex_id(jspan.get("spanID"), 8, f"{at}.spanID")
    name = jspan.get("operationName", "")
    span.name = name if isinstance(name, str) else str(name)
    start = _micros(jspan.get("startTime"), f"{at}.startTime") * 1000
    span.start_time_unix_nano = start
    span.end_time_unix_nano = (
        start + max(0, _micros(jspan.get("duration", 0), f"{at}.duration")) * 1000
    )
    flags = jspan.get("flags")
    if isinstance(flags, int) and not isinstance(flags, bool):
        span.flags = flags & 0xFF  # the W3C trace flags byte (sampled)

    scope_name = scope_version = ""
    status_code: trace_pb2.Status.StatusCode.ValueType | None = None
    error_tag = False
    for tag_index, tag in enumerate(_tags(jspan.get("tags"), f"{at}.tags")):
        key = tag.get("key")
        value = tag.get("value")
        if key in _FIELD_TAGS:
            text = value if isinstance(value, str) else str(value)
            if key == "span.kind":
                span.kind = _SPAN_KINDS.get(text.lower(), trace_pb2.Span.SPAN_KIND_UNSPECIFIED)
            elif key == "otel.status_code":
                status_code = _STATUS_CODES.get(text.lower())
            elif key == "otel.status_description":
                span.status.message = text
            elif key == "w3c.tracestate":
                span.trace_state = text
            elif key in _SCOPE_NAME_TAGS:
                scope_name = scope_name or text
            else:
                scope_version = scope_version or text
            continue
        if key == "error" and (isinstance(value, bool) or str(value).lower() in ("true", "false")):
            # OpenTracing's error flag: folded into the status, as Jaeger's translator does.
            error_tag = value is True or str(value).lower() == "true"
            continue
        _set_tag(span.attributes.add(), tag, f"{at}.tags[{tag_index}]")
    if status_code is not None:
        span.status.code = status_code
    elif error_tag:
        span.status.code = trace_pb2.Status.STATUS_CODE_ERROR

    _references(span, jspan.get("references"), at)
    _logs(span, jspan.get("logs"), f"{at}.logs")
    return span, scope_name, scope_version


def _references(span: trace_pb2.Span, refs: Any, at: str) -> None:
    """CHILD_OF -> parent; FOLLOWS_FROM -> a link, and the parent when there is no CHILD_OF
    in the same trace (how Jaeger draws it). Every other reference becomes a link
    tagged ``opentracing.ref_type``, so nothing in the file is lost."""
    if refs is None:
        return
    if not isinstance(refs, list):
        raise TraceFileError(f"{at}.references: expected an array")
    parsed: list[tuple[str, bytes, bytes]] = []
    for index, ref in enumerate(refs):
        where = f"{at}.references[{index}]"
        if not isinstance(ref, dict):
            raise TraceFileError(f"{where}: expected an object")
        ref_type = str(ref.get("refType", "CHILD_OF")).upper()
        trace_id = (
            _hex_id(ref.get("traceID"), 16, f"{where}.traceID")
            if ref.get("traceID")
            else span.trace_id
        )
        parsed.append((ref_type, trace_id, _hex_id(ref.get("spanID"), 8, f"{where}.spanID")))
    same_trace = [r for r in parsed if r[1] == span.trace_id]
    parent = next((r for r in same_trace if r[0] == "CHILD_OF"), None)
    if parent is None:
        follows = next((r for r in same_trace if r[0] == "FOLLOWS_FROM"), None)
        if follows is not None:
            span.parent_span_id = follows[2]
    else:
        span.parent_span_id = parent[2]
    for ref in parsed:
        if ref is parent:
            continue
        link = span.links.add(trace_id=ref[1], span_id=ref[2])
        link.attributes.add(key="opentracing.ref_type").value.string_value = ref[0].lower()


def _logs(span: trace_pb2.Span, logs: Any, at: str) -> None:
    """Logs -> events; the ``event`` field names the event (else the name stays empty,
    as in Jaeger's translator), the other fields are its attributes."""
    if logs is None:
        return
    if not isinstance(logs, list):
        raise TraceFileError(f"{at}: expected an array")
    for index, log in enumerate(logs):
        where = f"{at}[{index}]"
        if not isinstance(log, dict):
            raise TraceFileError(f"{where}: expected an object")
        event = span.events.add()
        event.time_unix_nano = _micros(log.get("timestamp", 0), f"{where}.timestamp") * 1000
        for field_index, field in enumerate(_tags(log.get("fields"), f"{where}.fields")):
            if field.get("key") == "event" and not event.name:
                value = field.get("value")
                event.name = value if isinstance(value, str) else str(value)
                continue
            _set_tag(event.attributes.add(), field, f"{where}.fields[{field_index}]")

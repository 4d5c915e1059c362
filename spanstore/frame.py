"""The span frame: one row per span, scalar and semantic-convention columns only.

Reports that look at many spans (failures, SLOs, service maps) work on this polars frame
rather than on :class:`~spanstore.model.Span` objects, so a backend can answer them with
one columnar query. :func:`frame_from_spans` builds the same frame from model spans.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import polars as pl

from spanstore.model import Span
from spanstore.semconv import INT_COLUMNS, STRING_COLUMNS

FRAME_SCHEMA: Final[dict[str, pl.DataType]] = {
    "trace_id": pl.String(),
    "span_id": pl.String(),
    "parent_span_id": pl.String(),
    "service_name": pl.String(),
    "name": pl.String(),
    "kind": pl.String(),
    "start_unix_nano": pl.Int64(),
    "end_unix_nano": pl.Int64(),
    "duration_ns": pl.Int64(),
    "status_code": pl.String(),
    "status_message": pl.String(),
    "exception_type": pl.String(),
    "exception_message": pl.String(),
    **{column: pl.String() for column in STRING_COLUMNS},
    **{column: pl.Int64() for column in INT_COLUMNS},
}

#: Span kinds and status codes by their OTLP numbers (the frame's spellings).
SPAN_KIND_NAMES: Final = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
STATUS_CODE_NAMES: Final = ("UNSET", "OK", "ERROR")

#: What an SLO report reads (``SpanReader.slo_spans``): far fewer rows and columns than
#: the span frame. ``event`` rows are the candidate SLO events (every column filled);
#: the other rows are the spans of the traces where a candidate meets a possible error,
#: for the error ancestry: keys, kind, status and HTTP code, and the status message and
#: exception only where the span may be an error (status ERROR or an HTTP code >= 400).
#: ``span_key`` / ``parent_key`` are opaque bytes, equal exactly when the trace and span
#: ids are (``parent_key`` names the parent span in the same trace; null for roots).
#: Kind and status are enums of the frame's spellings (cheaper than text for 1M rows).
SLO_SPANS_SCHEMA: Final[dict[str, pl.DataType]] = {
    "event": pl.Boolean(),
    "trace_id": pl.String(),
    "span_key": pl.Binary(),
    "parent_key": pl.Binary(),
    "service_name": pl.String(),
    "name": pl.String(),
    "kind": pl.Enum(SPAN_KIND_NAMES),
    "start_unix_nano": pl.Int64(),
    "end_unix_nano": pl.Int64(),
    "status_code": pl.Enum(STATUS_CODE_NAMES),
    "status_message": pl.String(),
    "exception_type": pl.String(),
    "exception_message": pl.String(),
    "http_method": pl.String(),
    "http_route": pl.String(),
    "rpc_service": pl.String(),
    "rpc_method": pl.String(),
    "http_status_code": pl.Int64(),
}


def exception_of(span: Span) -> tuple[str | None, str | None]:
    """The first ``exception`` event's type and message, as the conventions name them."""
    for event in span.events:
        if event.name == "exception":
            etype = event.attributes.get("exception.type")
            message = event.attributes.get("exception.message")
            return (
                str(etype) if etype is not None else None,
                str(message) if message is not None else None,
            )
    return None, None


def semantic_value(span: Span, keys: tuple[str, ...]) -> object:
    for key in keys:
        value = span.attributes.get(key)
        if value is not None:
            return value
    return None


def frame_from_spans(spans: Iterable[Span]) -> pl.DataFrame:
    rows: dict[str, list[object]] = {name: [] for name in FRAME_SCHEMA}
    for span in spans:
        # Like the store, only error spans carry their exception in the frame: the
        # ingest path reads events of error spans only, to stay fast.
        etype, emessage = exception_of(span) if span.is_error else (None, None)
        rows["trace_id"].append(span.trace_id)
        rows["span_id"].append(span.span_id)
        rows["parent_span_id"].append(span.parent_span_id)
        rows["service_name"].append(span.service_name)
        rows["name"].append(span.name)
        rows["kind"].append(span.kind)
        rows["start_unix_nano"].append(span.start_unix_nano)
        rows["end_unix_nano"].append(span.end_unix_nano)
        rows["duration_ns"].append(span.end_unix_nano - span.start_unix_nano)
        rows["status_code"].append(span.status_code)
        rows["status_message"].append(span.status_message)
        rows["exception_type"].append(etype)
        rows["exception_message"].append(emessage)
        for column, keys in STRING_COLUMNS.items():
            value = semantic_value(span, keys)
            rows[column].append(None if value is None else str(value))
        for column, keys in INT_COLUMNS.items():
            value = semantic_value(span, keys)
            try:
                rows[column].append(None if value is None else int(str(value)))
            except ValueError:
                rows[column].append(None)
    return pl.DataFrame(rows, schema=FRAME_SCHEMA)

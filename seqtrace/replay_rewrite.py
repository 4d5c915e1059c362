"""What `seqtrace replay` changes in the spans and log records it re-sends: ids and times.

Everything else (names, attributes, events, links, resources, scopes, trace state) goes
out byte for byte as stored. The rewrite works on parsed protobuf messages' scalar
fields only, never attribute by attribute (NOTES.md: per-attribute Python work is what
costs on this path).

Fresh ids come from a keyed hash of the old id (BLAKE2b keyed with a random per-replay
key), not from a table: the same old id maps to the same new id in every span, parent,
link and log record however the incident is cut into chunks, memory stays bounded for
a million spans, and two replays (two keys) give two unrelated incidents.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from analyzer.otlp_batches import split_logs, split_spans

__all__ = [
    "IdMap",
    "last_span_end",
    "rewrite_logs",
    "rewrite_spans",
    "split_logs",
    "split_spans",
]


class IdMap:
    """Old trace/span id -> new one; ``keep=True`` maps every id to itself."""

    def __init__(self, keep: bool = False, key: bytes | None = None) -> None:
        self.keep = keep
        self._key = key if key is not None else os.urandom(32)

    def _new(self, old: bytes, size: int) -> bytes:
        if not old or self.keep:
            return old  # no id (a root's parent, a log without a trace) stays none
        new = hashlib.blake2b(old, digest_size=size, key=self._key, person=b"%d" % size).digest()
        # An all-zero id is invalid in OTLP; 2**-64 odds, but a receiver would drop it.
        return new if any(new) else hashlib.blake2b(new + old, digest_size=size).digest()

    def trace(self, old: bytes) -> bytes:
        return self._new(old, 16)

    def span(self, old: bytes) -> bytes:
        return self._new(old, 8)


def _shifted(value: int, shift: int) -> int:
    """A fixed64 time moved by ``shift``; 0 means "not set" in OTLP and stays 0."""
    if not value:
        return 0
    moved = value + shift
    if moved <= 0:
        raise ValueError("--at is too early: the incident would start before 1970")
    return moved


def rewrite_spans(request: ExportTraceServiceRequest, ids: IdMap, shift: int) -> int:
    """Shift every time by ``shift`` ns and map every id through ``ids``, in place;
    returns the number of spans."""
    count = 0
    keep = ids.keep
    # The spans of a request share few trace ids, and most parents are spans of the same
    # request: hashing each distinct id once halves the work per span.
    traces: dict[bytes, bytes] = {}
    spans: dict[bytes, bytes] = {}
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                count += 1
                if not keep:
                    old = span.trace_id
                    new = traces.get(old)
                    if new is None:
                        new = traces[old] = ids.trace(old)
                    span.trace_id = new
                    old = span.span_id
                    new = spans.get(old)
                    if new is None:
                        new = spans[old] = ids.span(old)
                    span.span_id = new
                    old = span.parent_span_id
                    if old:
                        new = spans.get(old)
                        if new is None:
                            new = spans[old] = ids.span(old)
                        span.parent_span_id = new
                    for link in span.links:
                        link.trace_id = ids.trace(link.trace_id)
                        link.span_id = ids.span(link.span_id)
                if shift:
                    span.start_time_unix_nano = _shifted(span.start_time_unix_nano, shift)
                    span.end_time_unix_nano = _shifted(span.end_time_unix_nano, shift)
                    for event in span.events:
                        event.time_unix_nano = _shifted(event.time_unix_nano, shift)
    return count


def rewrite_logs(request: ExportLogsServiceRequest, ids: IdMap, shift: int) -> int:
    """The same rewrite for log records (with the spans' id map, so each record still
    points at its span); returns the number of records."""
    count = 0
    for resource_logs in request.resource_logs:
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                count += 1
                if not ids.keep:
                    record.trace_id = ids.trace(record.trace_id)
                    record.span_id = ids.span(record.span_id)
                if shift:
                    record.time_unix_nano = _shifted(record.time_unix_nano, shift)
                    record.observed_time_unix_nano = _shifted(record.observed_time_unix_nano, shift)
    return count


def last_span_end(requests: Iterable[ExportTraceServiceRequest]) -> int | None:
    """The newest span end (its start when it has no end) over these requests."""
    newest: int | None = None
    for request in requests:
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    end = max(span.end_time_unix_nano, span.start_time_unix_nano)
                    if newest is None or end > newest:
                        newest = end
    return newest


def first_span_start(requests: Iterable[ExportTraceServiceRequest]) -> int | None:
    starts = [
        span.start_time_unix_nano
        for request in requests
        for rs in request.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    ]
    return min(starts) if starts else None

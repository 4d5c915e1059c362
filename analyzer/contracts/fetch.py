"""Observed diagrams for the checks: one entity's, or every entity's of a key in a window.

Three ways to the data, best first:

* a :class:`~spanstore.SpanReader` (or a :class:`~analyzer.source.LocalSource`
  around one): entity traces come from the store's ``entity_traces_in_range`` (one
  query for the whole key: each entity's traces in the window plus the traces linked to
  them, as the entity diagram draws them), spans are read in bulk per batch of entities
  and every diagram is built in this process, uncapped (``max_messages=0``);
* any other :class:`~analyzer.source.Source` (``HttpSource``): ``entities(key)`` then
  ``diagram(entity)`` per entity (capped at the diagram's default of 500 messages).

Diagrams are SPEC dicts (``to_dict``) so the matcher sees what the query API would send.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from analyzer.source import (
    DEFAULT_RANGE_NS,
    LocalSource,
    Source,
    SourceError,
    no_entity_spans,
    parse_entity,
)
from spanstore import SpanReader
from spanstore.model import Span

__all__ = [
    "BATCH_ENTITIES",
    "default_range",
    "entity_diagram",
    "entity_traces",
    "key_diagrams",
    "reader_of",
]

#: Entities whose spans are read and held at once by the bulk path.
BATCH_ENTITIES: Final = 400
_VALUE_LIMIT: Final = 10_000  # the query API's cap on entities(key) values


def reader_of(source: Source | SpanReader) -> SpanReader | None:
    """The span reader behind ``source`` when it computes in this process, else None."""
    if isinstance(source, LocalSource):
        return source.reader
    if not isinstance(source, Source) and isinstance(source, SpanReader):
        return source
    return None


def default_range(
    source: Source | SpanReader, start: int | None, end: int | None
) -> tuple[int, int]:
    """``[start, end)``; a missing bound from SPEC's default: the 24 hours that end at the
    newest stored span."""
    if start is not None and end is not None:
        if end <= start:
            raise SourceError("--to must be after --from")
        return start, end
    reader = reader_of(source)
    if reader is not None:
        newest = reader.stats().last_unix_nano
    else:
        assert isinstance(source, Source)
        newest = source.stats().get("last_unix_nano")
    if end is None:
        end = (int(newest) + 1) if newest is not None else time.time_ns()  # empty: up to now
        if start is not None and start >= end:  # --from after the newest span: up to now
            end = max(start + 1, time.time_ns())
    if start is None:
        start = end - DEFAULT_RANGE_NS
    return start, end


def entity_diagram(
    source: Source | SpanReader, entity: str, start: int | None = None, end: int | None = None
) -> dict[str, Any]:
    """One entity's diagram (SPEC dict): all of its history unless a window is given."""
    key, value = parse_entity(entity)
    reader = reader_of(source)
    if reader is None:
        assert isinstance(source, Source)
        result = source.diagram(entity=f"{key}={value}", start=start, end=end, fmt="json")
        assert isinstance(result, dict)
        return result
    trace_ids = reader.entity_trace_ids(key, value, start, end)
    if not trace_ids:
        raise no_entity_spans(key, value, start, end)
    linked = reader.linked_trace_ids(trace_ids)
    return _diagram(reader.spans([*trace_ids, *linked]), key, value)


def key_diagrams(
    source: Source | SpanReader, key: str, start: int, end: int
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(value, diagram) for every value of ``key`` with an entity span in ``[start, end)``,
    in value order."""
    reader = reader_of(source)
    if reader is None:
        assert isinstance(source, Source)
        yield from _remote_diagrams(source, key, start, end)
        return
    yield from build_entity_diagrams(reader, key, entity_traces(reader, key, start, end))


@dataclass(frozen=True, slots=True)
class TraceRow:
    """One trace of an entity: ``shape`` (None: not shareable) and the span ids in the order
    the shape lists them (see ``spanstore/sql/*/entity_traces_in_range.sql``)."""

    trace_id: str
    start_unix_nano: int = 0
    shape: str | None = None
    span_ids: tuple[str, ...] = ()


def entity_rows(reader: SpanReader, key: str, start: int, end: int) -> dict[str, list[TraceRow]]:
    """value -> its traces (own ones in the window and linked ones), in diagram order, for
    every value of ``key`` with an entity span in ``[start, end)``."""
    method = getattr(reader, "entity_traces_in_range", None)
    found: list[tuple[Any, ...]]
    if callable(method):  # every store's reader (spanstore.reader.StoreReader)
        found = list(method(key, start, end))
    else:
        found = [(v, tid, 0, None, ()) for v, tid in _traces_one_by_one(reader, key, start, end)]
    out: dict[str, list[TraceRow]] = {}
    for value, trace_id, trace_start, shape, span_ids in found:
        out.setdefault(str(value), []).append(
            TraceRow(str(trace_id), int(trace_start or 0), shape, tuple(span_ids or ()))
        )
    return out


def entity_traces(reader: SpanReader, key: str, start: int, end: int) -> dict[str, list[str]]:
    """value -> trace ids, for every value of ``key`` with an entity span in the window."""
    return {
        value: [row.trace_id for row in rows]
        for value, rows in entity_rows(reader, key, start, end).items()
    }


def build_entity_diagrams(
    reader: SpanReader, key: str, traces: dict[str, list[str]]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(value, diagram) for the given values and their trace ids, spans read in batches."""
    values = sorted(traces)
    for offset in range(0, len(values), BATCH_ENTITIES):
        batch = values[offset : offset + BATCH_ENTITIES]
        wanted = sorted({tid for value in batch for tid in traces[value]})
        by_trace: dict[str, list[Span]] = {}
        for span in reader.spans(wanted):
            by_trace.setdefault(span.trace_id, []).append(span)
        for value in batch:
            spans = [span for tid in traces[value] for span in by_trace.get(tid, ())]
            if spans:
                yield value, _diagram(spans, key, value)


def _traces_one_by_one(reader: SpanReader, key: str, start: int, end: int) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for entry in reader.entity_values(key, 1_000_000, start, end):
        own = reader.entity_trace_ids(key, entry.value, start, end)
        rows += [(entry.value, tid) for tid in own]
        rows += [(entry.value, tid) for tid in reader.linked_trace_ids(own)]
    return rows


def _remote_diagrams(
    source: Source, key: str, start: int, end: int
) -> Iterator[tuple[str, dict[str, Any]]]:
    listed = source.entities(key=key, limit=_VALUE_LIMIT, start=start, end=end)
    values = sorted(str(v["value"]) for v in listed.get("values") or ())
    for value in values:
        try:
            result = source.diagram(entity=f"{key}={value}", start=start, end=end, fmt="json")
        except SourceError as exc:
            if exc.status == 404:
                continue  # gone between the listing and the read
            raise
        assert isinstance(result, dict)
        yield value, result


def _diagram(spans: list[Span], key: str, value: str) -> dict[str, Any]:
    from analyzer.diagram import build_diagram, to_dict

    diagram = build_diagram(spans, (key, value), max_messages=0)
    result: dict[str, Any] = to_dict(diagram)
    return result

"""Flows: the selected traces folded into variants (SPEC ``seqtrace flow``).

``flow_of_reader(reader, ...)`` selects traces (a root operation, an entity, every value
of an entity key, or a list of trace ids), folds them (:mod:`analyzer.flow.variants`) and
returns SPEC's ``flow --json`` body with the variants; ``render_flow`` draws it.
A root operation is read through the store's fingerprint query, so a busy hour costs one
span-object trace per distinct structure, not one per trace.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from analyzer.flow.report import FLOW_FORMATS, flow_dict, render_flow, selection_dict
from analyzer.flow.variants import (
    Member,
    StructureGroup,
    Variant,
    fold,
    groups_of_spans,
)
from analyzer.source import SourceError

__all__ = [
    "FLOW_FORMATS",
    "MAX_KEY_VALUES",
    "MAX_SELECTED_TRACES",
    "FlowError",
    "Variant",
    "flow_dict",
    "flow_of_reader",
    "flow_of_spans",
    "parse_root",
    "render_flow",
]

#: How far past the range a selected trace's spans are read (a trace started in the range
#: may run on after it).
TRACE_TAIL_NS: Final = 3_600_000_000_000
#: Selections by entity key or trace list are folded from span objects; past these the
#: request is refused, asking for a narrower range (a root operation has no such limit).
MAX_KEY_VALUES: Final = 5_000
MAX_SELECTED_TRACES: Final = 20_000
QUERY_UNAVAILABLE: Final = "the query language is not available in this build"


class FlowError(SourceError):
    """A selection that cannot be answered; ``status`` as HTTP (400 bad input, 404, 413)."""


def parse_root(text: str) -> tuple[str, str]:
    """``SERVICE: OPERATION`` (or ``SERVICE:OPERATION``) -> (service, operation)."""
    service, sep, operation = text.partition(":")
    if not sep or not service.strip() or not operation.strip():
        raise FlowError(
            f'root must look like "SERVICE: OPERATION" (e.g. "frontend: POST /checkout"), '
            f"got {text!r}"
        )
    return service.strip(), operation.strip()


def flow_of_spans(
    spans: Sequence[Any],
    members: Sequence[tuple[str, Sequence[str]]] | None = None,
    entity: tuple[str, str] | None = None,
) -> list[Variant]:
    """The variants of spans in memory: each trace (or each member's traces) one sequence."""
    return fold(groups_of_spans(spans, members), entity)


def groups_of_frame(
    reader: Any,
    frame: Any,
    lo: int,
    hi: int,
    *,
    show_internal: bool = False,
    spans: Mapping[str, Sequence[Any]] | None = None,
) -> list[StructureGroup]:
    """Structure groups from a fingerprint frame (``flow_root_shapes``/``flow_trace_shapes``
    rows): one representative per fingerprint is read as span objects (between ``lo`` and
    ``hi``, as the frame's spans were), every other member only as its row. ``spans``:
    the traces already read (by trace id); only the representatives missing there are
    read."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    for row in frame.select(_SHAPE_COLUMNS).iter_rows():
        fingerprint = row[4]
        rows.setdefault(fingerprint if fingerprint is not None else "t" + row[0], []).append(row)
    representatives = [members[0][0] for members in rows.values()]
    by_trace: dict[str, Sequence[Any]] = dict(spans or {})
    missing = [trace_id for trace_id in representatives if trace_id not in by_trace]
    if missing:
        read: dict[str, list[Any]] = {}
        for span in reader.spans(missing, start_unix_nano=lo, end_unix_nano=hi):
            read.setdefault(span.trace_id, []).append(span)
        by_trace.update(read)
    groups: list[StructureGroup] = []
    for members in rows.values():
        built = groups_of_spans(by_trace.get(members[0][0], []), show_internal=show_internal)
        if not built:
            continue
        group = built[0]
        if len(group.positions) != len(members[0][5]):
            # The spans changed between the two reads (ingest): fold this one alone.
            groups.append(group)
            continue
        group.members = [
            Member(
                name=trace_id,
                trace_ids=(trace_id,),
                start_unix_nano=int(start),
                duration_ns=int(duration),
                outcome=outcome,
                durations=durations,
                errors=errors,
            )
            for trace_id, start, duration, outcome, _, durations, errors in members
        ]
        groups.append(group)
    return groups


_SHAPE_COLUMNS: Final = (
    "trace_id",
    "start_unix_nano",
    "duration_ns",
    "outcome",
    "fingerprint",
    "durations",
    "errors",
)


def _root_groups(
    reader: Any, service: str, operation: str, lo: int, hi: int
) -> list[StructureGroup]:
    shapes = getattr(reader, "flow_root_shapes", None)
    frame = shapes(service, operation, lo, hi) if shapes is not None else None
    if frame is None:
        # A store without the fingerprint query: the roots from the span frame, then
        # every selected trace as span objects.
        ids = root_trace_ids(reader, service, operation, lo, hi)
        spans = reader.spans(ids, start_unix_nano=lo, end_unix_nano=hi + TRACE_TAIL_NS - 1)
        return groups_of_spans(spans)
    return groups_of_frame(reader, frame, lo, hi + TRACE_TAIL_NS - 1)


def _root_operation(frame: Any) -> Any:
    """The frame's operation names of a span, as flow_root_operations.sql names them."""
    import polars as pl

    return pl.coalesce(
        pl.concat_str([pl.col("http_method"), pl.col("http_route")], separator=" "),
        pl.concat_str([pl.col("rpc_service"), pl.col("rpc_method")], separator="/"),
        pl.col("name"),
    )


def root_trace_ids(reader: Any, service: str, operation: str, lo: int, hi: int) -> list[str]:
    """Traces whose root span is ``service``'s ``operation`` (name, route, "METHOD route",
    RPC method or "service/method"), from the span frame."""
    import polars as pl

    frame = reader.span_frame(lo, hi, service, whole_traces=False)
    roots = frame.filter(
        pl.col("parent_span_id").is_null() | (pl.col("parent_span_id") == ""),
        pl.col("service_name") == service,
    )
    named = (
        (pl.col("name") == operation)
        | (pl.col("http_route") == operation)
        | (pl.col("rpc_method") == operation)
        | (_root_operation(roots) == operation)
        | (pl.concat_str([pl.col("http_method"), pl.col("http_route")], separator=" ") == operation)
    )
    return sorted(set(roots.filter(named)["trace_id"].to_list()))


def root_operations(reader: Any, lo: int, hi: int, limit: int) -> list[dict[str, Any]]:
    """service, operation, traces, failed per root operation in the range, busiest first."""
    import polars as pl

    listing = getattr(reader, "flow_root_operations", None)
    found = listing(lo, hi, limit) if listing is not None else None
    if found is None:
        frame = reader.span_frame(lo, hi, None, whole_traces=False)
        roots = frame.filter(pl.col("parent_span_id").is_null() | (pl.col("parent_span_id") == ""))
        found = (
            roots.with_columns(operation=_root_operation(roots))
            .group_by(pl.col("service_name").alias("service"), "operation")
            .agg(
                pl.len().cast(pl.Int64).alias("traces"),
                (pl.col("status_code") == "ERROR").sum().cast(pl.Int64).alias("failed"),
            )
            .sort(["traces", "service", "operation"], descending=[True, False, False])
            .head(limit)
        )
    rows: list[dict[str, Any]] = found.to_dicts()
    return rows


def _trace_groups(reader: Any, trace_ids: Sequence[str]) -> list[StructureGroup]:
    """Each trace one member, folded by the store's fingerprints when it has them."""
    read_shapes = getattr(reader, "flow_trace_shapes_and_spans", None)
    found = read_shapes(list(trace_ids)) if read_shapes is not None else None
    if found is None:
        return groups_of_spans(reader.spans(list(trace_ids)))
    frame, spans = found
    by_trace: dict[str, list[Any]] = {}
    for span in spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    return groups_of_frame(reader, frame, _FAR_PAST, _FAR_FUTURE, spans=by_trace)


_FAR_PAST: Final = -(1 << 62)
_FAR_FUTURE: Final = 1 << 62


def flow_of_reader(
    reader: Any,
    lo: int,
    hi: int,
    *,
    root: str | None = None,
    entity: tuple[str, str] | None = None,
    key: str | None = None,
    trace_ids: Sequence[str] | None = None,
    query: str | None = None,
    query_finder: Any = None,
) -> tuple[dict[str, Any], list[Variant]]:
    """SPEC's ``flow --json`` body for the one selection given, and its variants.

    ``--query`` takes ``query_finder(query, start, end) -> trace ids`` (the source's
    ``query_trace_ids``); without one, the reader's query language answers (it takes a
    parsed query, so the text goes through ``analyzer.query``); a reader without one is
    refused as unavailable."""
    given = [x for x in (root, entity, key, trace_ids, query) if x is not None]
    if len(given) != 1:
        raise FlowError("give one of --root, --entity, --key or --query (or trace ids)")
    selection = selection_dict(root, entity, key, query)
    if query is not None:
        finder = query_finder
        if finder is None and hasattr(reader, "query_trace_ids"):
            from analyzer.query import trace_ids as query_reader_trace_ids

            def finder(text: str, start: int, end: int) -> list[str]:
                return query_reader_trace_ids(reader, text, start, end)

        if finder is None:
            raise FlowError(QUERY_UNAVAILABLE)
        try:
            trace_ids = [str(t) for t in finder(query, lo, hi)]
        except ValueError as exc:  # a query that does not parse: one line, 400
            raise FlowError(str(exc)) from None
    variants: list[Variant]
    if root is not None:
        service, operation = parse_root(root)
        variants = fold(_root_groups(reader, service, operation, lo, hi))
    elif entity is not None:
        ids = reader.entity_trace_ids(entity[0], entity[1], lo, hi)
        if not ids:
            raise FlowError(f"no spans carry {entity[0]}={entity[1]} in the range", 404)
        _check_size(len(ids), MAX_SELECTED_TRACES, "traces")
        variants = fold(_trace_groups(reader, ids), entity)
    elif key is not None:
        found = reader.entity_traces_in_range(key, lo, hi)
        members: dict[str, list[str]] = {}
        for row in found:
            members.setdefault(str(row[0]), []).append(str(row[1]))
        _check_size(len(members), MAX_KEY_VALUES, f"values of {key}")
        every = sorted({t for ids in members.values() for t in ids})
        _check_size(len(every), MAX_SELECTED_TRACES, "traces")
        variants = flow_of_spans(reader.spans(every), sorted(members.items()))
    else:
        assert trace_ids is not None
        _check_size(len(trace_ids), MAX_SELECTED_TRACES, "traces")
        variants = fold(_trace_groups(reader, trace_ids)) if trace_ids else []
    return flow_dict(variants, selection, lo, hi), variants


def _check_size(count: int, limit: int, what: str) -> None:
    if count > limit:
        raise FlowError(
            f"the selection holds {count} {what}, more than the {limit} a flow folds this "
            "way; narrow the time range (--from/--to) or pick a root operation",
            413,
        )

"""Busy entities: a diagram past the message cap folds repeated traces, never a failure.

SPEC ("Busy entities"): past the cap, traces of the entity that did the same thing fold
into one drawing whose messages carry ``count`` (the calls they stand for), ``trace_ids``
(up to 20, failing first) and ``errors``; every message that failed stays; and
``omitted_messages`` counts only messages that succeeded.

How: the entity's traces are drawn as the diagram always draws them. If that exceeds the
cap, the traces without an error fold by variant (:mod:`analyzer.flow.variants`): a variant
of one trace keeps that trace's own drawing, a variant of several becomes one folded
drawing. Traces with an error stay drawn in full. If the result is still over the cap,
the successful traces drawn on their own go first (the newest first), then, from the
newest failing trace back, the successful messages of failing traces, then folded
drawings (the rarest first); failed messages always stay.

From a store (:func:`diagram_of_entity_in_store`), one query brings each trace's
structure fingerprint and counts, and the spans of only the traces drawn or arranged: the
failing ones and one per fingerprint (docs/flows.md, "At incident volume").
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from analyzer.diagram.build import build_diagram
from analyzer.diagram.model import Block, Diagram, Entity, Message, Note, Participant, Section
from analyzer.diagram.text import TIMES
from analyzer.flow.shape import ShapeKey
from analyzer.flow.variants import (
    MAX_EXAMPLES,
    Parts,
    StructureGroup,
    Variant,
    groups_of_spans,
    make_variant,
    shapes,
)
from spanstore.model import Span

__all__ = [
    "DEFAULT_MAX_MESSAGES",
    "EntityDiagrams",
    "diagram_of_busy_entity",
    "diagram_of_entity_in_store",
    "trace_ranges",
]

DEFAULT_MAX_MESSAGES = 500


@dataclass(eq=False)  # segments are told apart by identity (``list.remove``)
class _Segment:
    """One drawing in the folded diagram: a trace's own, or a folded variant's."""

    start_unix_nano: int
    end_unix_nano: int
    trace_ids: tuple[str, ...]
    messages: list[Message]
    blocks: list[Block] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    failing: bool = False
    folded: int = 1
    participants: tuple[Participant, ...] = ()
    #: A folded drawing is made only if it stays in (most busy entities drop many):
    #: until then, its variant's parts and how many messages it will have.
    pending: tuple[ShapeKey, Parts] | None = None
    pending_messages: int = 0

    def size(self) -> int:
        """How many messages the drawing has (or will have, once made)."""
        return self.pending_messages if self.pending is not None else len(self.messages)

    def made(self) -> _Segment:
        """The drawing itself (a folded one made now)."""
        return self if self.pending is None else _folded(make_variant(*self.pending))

    def failed_only(self) -> int:
        """Keeps only the failed messages; returns how many successful ones went."""
        kept = [m for m in self.messages if m.is_error]
        dropped = len(self.messages) - len(kept)
        self.messages, self.blocks = kept, []
        if dropped:
            text = f"{dropped} successful message(s) of this failed trace omitted"
            self.notes = [*self.notes, Note(0, "omitted", text)]
        return dropped


def diagram_of_busy_entity(
    spans: Sequence[Span],
    entity: tuple[str, str] | None,
    *,
    show_internal: bool = False,
    max_messages: int = DEFAULT_MAX_MESSAGES,
) -> Diagram:
    """The entity's diagram (as :func:`build_diagram` draws it when it fits the cap)."""
    full = build_diagram(spans, entity, show_internal=show_internal, max_messages=0)
    if max_messages <= 0 or len(full.messages) <= max_messages:
        return full
    failing = _failing(full)
    quiet = [span for span in spans if span.trace_id not in failing]
    groups = groups_of_spans(quiet, show_internal=show_internal)
    segments = _segments(full, failing, groups)
    summary = f"{len(full.traces)} traces, {len(full.messages)} messages"
    return _assemble(full, full.traces, segments, entity, max_messages, summary)


#: Entities with more spans than this are read through the store's fingerprints.
SPANS_READ_WHOLE = 2_000
#: Entities in at most this many traces are read whole first, as before folding existed
#: (most entities are small: their spans cost less than their fingerprints, and seldom
#: reach SPANS_READ_WHOLE); the others are fingerprinted first.
FEW_TRACES = 100


#: How far from the time an entity first appears in a trace that trace's spans are
#: looked for changes (analyzer.source.TRACE_REACH_NS: where a trace's spans can be).
TRACE_REACH_NS = 3_600_000_000_000


def trace_ranges(first_starts: Sequence[int]) -> list[tuple[int, int]]:
    """Where the spans of traces that touch an entity first at these times can start
    (TRACE_REACH_NS either side), overlapping windows merged."""
    merged: list[list[int]] = []
    for first in sorted(first_starts):
        lo, hi = first - TRACE_REACH_NS, first + TRACE_REACH_NS + 1
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [(lo, hi) for lo, hi in merged]


class EntityDiagrams:
    """Entity diagrams kept while the store says nothing changed where their traces are
    (its ``data_versions`` over the ranges given, all time by default; a store that
    cannot tell keeps none). The same busy entity is asked for again and again (the UI
    reruns its page, a dashboard polls the API), each answer costs a search of the
    whole store, and ingest writes the current hours, where an entity's older traces
    are not: keyed by the entity's trace ids, a kept diagram stays right while no write
    touches the hours of those traces (a new trace of the entity changes the key)."""

    def __init__(self, size: int = 16) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._kept: OrderedDict[Hashable, tuple[tuple[int, ...], Diagram]] = OrderedDict()

    def get(
        self,
        reader: Any,
        key: Hashable,
        make: Callable[[], Diagram],
        ranges: Sequence[tuple[int, int]] = ((-(1 << 62), 1 << 62),),
    ) -> Diagram:
        """The diagram kept under ``key`` if nothing in ``ranges`` changed since, else
        ``make()`` (kept with the versions the ranges had before it began)."""
        found_versions = getattr(reader, "data_versions", lambda ranges: None)(list(ranges))
        if not found_versions:
            return make()
        versions = tuple(found_versions)
        key = (key, tuple(ranges))
        with self._lock:
            found = self._kept.get(key)
            if found is not None and found[0] == versions:
                self._kept.move_to_end(key)
                return found[1]
        made = make()
        with self._lock:
            self._kept[key] = (versions, made)
            self._kept.move_to_end(key)
            while len(self._kept) > self._size:
                self._kept.popitem(last=False)
        return made


def diagram_of_entity_in_store(
    reader: Any,
    trace_ids: Sequence[str],
    entity: tuple[str, str],
    *,
    show_internal: bool = False,
    max_messages: int = DEFAULT_MAX_MESSAGES,
    kept: EntityDiagrams | None = None,
    first_starts: Sequence[int] | None = None,
) -> Diagram:
    """The entity's diagram from a store. A busy entity (more than
    :data:`SPANS_READ_WHOLE` spans) is read by fingerprint: its failing traces and one
    trace per fingerprint become span objects, the others are only counted. An entity
    in more than :data:`FEW_TRACES` traces is fingerprinted first, and the same search
    of the store brings those spans (all of them when the entity turns out small);
    a smaller one is read whole first, and fingerprinted only when it is busy. With
    ``kept``, a diagram of the same traces from an unchanged store is not made again;
    with ``first_starts`` (when the entity first appears in each of ``trace_ids``: no
    linked traces), only a change in the hours around those times makes it again."""
    if kept is not None:
        key = (tuple(trace_ids), entity, show_internal, max_messages)
        whole = first_starts is None or len(first_starts) != len(trace_ids) or not trace_ids
        return kept.get(
            reader,
            key,
            lambda: diagram_of_entity_in_store(
                reader, trace_ids, entity, show_internal=show_internal, max_messages=max_messages
            ),
            [(_FAR_PAST, _FAR_FUTURE)] if whole else trace_ranges(first_starts or ()),
        )
    from analyzer.flow import groups_of_frame

    ids = list(trace_ids)
    frame = None
    read: list[Span] = []
    read_shapes = getattr(reader, "flow_trace_shapes_and_spans", None)
    if len(ids) > FEW_TRACES and read_shapes is not None:
        found = read_shapes(ids, failing=True, whole_spans=SPANS_READ_WHOLE)
        if found is not None:
            frame, read = found
    if frame is None:
        read = reader.spans(ids)
        shapes_only = getattr(reader, "flow_trace_shapes", None)
        if len(read) > SPANS_READ_WHOLE and len(ids) <= FEW_TRACES and shapes_only is not None:
            frame = shapes_only(ids)
    if frame is None or int(frame["spans"].sum() or 0) <= SPANS_READ_WHOLE:
        return diagram_of_busy_entity(
            read, entity, show_internal=show_internal, max_messages=max_messages
        )
    import polars as pl

    by_trace: dict[str, list[Span]] = {}
    for span in read:
        by_trace.setdefault(span.trace_id, []).append(span)
    failing_rows = frame.filter(pl.col("outcome") != "ok")
    quiet_rows = frame.filter(pl.col("outcome") == "ok")
    groups = groups_of_frame(
        reader, quiet_rows, _FAR_PAST, _FAR_FUTURE, show_internal=show_internal, spans=by_trace
    )
    failing_ids = failing_rows["trace_id"].to_list()
    drawn = failing_ids + [g.members[0].trace_ids[0] for g in groups if len(g.members) == 1]
    spans = _spans_of(reader, drawn, by_trace)
    full = build_diagram(spans, entity, show_internal=show_internal, max_messages=0)
    segments = _segments(full, set(failing_ids), groups)
    every = tuple(frame.sort("start_unix_nano", "trace_id")["trace_id"].to_list())
    summary = f"{len(every)} traces, {int(frame['spans'].sum())} spans"
    return _assemble(full, every, segments, entity, max_messages, summary)


def _spans_of(reader: Any, trace_ids: Sequence[str], read: dict[str, list[Span]]) -> list[Span]:
    """The traces' spans in the store's order (start, span id): those already ``read``,
    the others (none, unless the store changed between two reads) from the store."""
    missing = [t for t in trace_ids if t not in read]
    spans = [span for t in dict.fromkeys(trace_ids) if t in read for span in read[t]]
    if missing:
        spans += reader.spans(missing)
    spans.sort(key=lambda s: (s.start_unix_nano, s.span_id))
    return spans


_FAR_PAST = -(1 << 62)
_FAR_FUTURE = 1 << 62


def _failing(full: Diagram) -> set[str]:
    failing: set[str] = set()
    for section in full.sections:
        if any(m.is_error for m in full.messages[section.first : section.last + 1]):
            failing.add(section.trace_id)
    return failing


def _segments(full: Diagram, failing: set[str], groups: list[StructureGroup]) -> list[_Segment]:
    by_trace = {section.trace_id: section for section in full.sections}
    segments = [_own(full, by_trace[tid], True) for tid in sorted(failing) if tid in by_trace]
    # A variant of one trace keeps that trace's own drawing: only the others are made
    # (their order does not matter: the drawings are put in time order).
    for key, parts in shapes(groups).items():
        members = [member for group, _ in parts for member in group.members]
        if len(members) == 1 and members[0].trace_ids[0] in by_trace:
            segments.append(_own(full, by_trace[members[0].trace_ids[0]], False))
        else:
            segments.append(_folded_later(key, parts))
    segments.sort(key=lambda s: (s.start_unix_nano, s.trace_ids))
    return segments


def _own(full: Diagram, section: Section, failing: bool) -> _Segment:
    first, last = section.first, section.last
    blocks = [
        dataclasses.replace(
            b,
            first=b.first - first,
            last=b.last - first,
            branches=tuple(i - first for i in b.branches),
        )
        for b in full.blocks
        if first <= b.first and b.last <= last
    ]
    notes = [
        dataclasses.replace(n, index=n.index - first)
        for n in full.notes
        if n.kind in ("skew", "partial") and first <= n.index <= last
    ]
    return _Segment(
        section.start_unix_nano,
        section.end_unix_nano,
        (section.trace_id,),
        list(full.messages[first : last + 1]),
        blocks,
        notes,
        failing,
    )


def _folded_later(key: ShapeKey, parts: Parts) -> _Segment:
    """The folded drawing of a variant, as :func:`_folded` makes it, but made later
    (``_Segment.made``): what the cap needs (times, traces, the message count) comes
    from the parts alone."""
    members = [member for group, _ in parts for member in group.members]
    return _Segment(
        min(m.start_unix_nano for m in members),
        max(m.start_unix_nano + m.duration_ns for m in members),
        tuple(t for m in members for t in m.trace_ids),
        [],
        folded=len(members),
        pending=(key, parts),
        pending_messages=len(parts[0][1].slots),
    )


def _folded(variant: Variant) -> _Segment:
    examples = tuple(variant.examples()[:MAX_EXAMPLES])
    messages: list[Message] = []
    for message, stats in zip(variant.diagram.messages, variant.stats, strict=True):
        label = message.label if stats.count <= 1 else f"{message.label} {TIMES}{stats.count}"
        messages.append(
            dataclasses.replace(
                message,
                label=label,
                count=stats.count,
                failed=stats.errors,
                trace_ids=examples,
            )
        )
    start = min(m.start_unix_nano for m in variant.members)
    end = max(m.start_unix_nano + m.duration_ns for m in variant.members)
    text = (
        f"{variant.count} traces that made the same calls folded into one drawing "
        f"(counts are over all of them)"
    )
    return _Segment(
        start,
        end,
        tuple(t for m in variant.members for t in m.trace_ids),
        messages,
        list(variant.diagram.blocks),
        [Note(0, "variant", text)],
        False,
        variant.count,
        variant.diagram.participants,
    )


def _cap(segments: list[_Segment], max_messages: int) -> int:
    """Drops drawings until the cap holds, never a failed message; returns how many
    successful messages went. First the successful traces drawn on their own (the
    newest first), then the successful messages of failing traces (the newest first),
    then folded drawings (the rarest first): what most traces did stays longest."""
    total = sum(s.size() for s in segments)
    omitted = 0
    singles = sorted(
        (s for s in segments if not s.failing and s.folded == 1),
        key=lambda s: -s.start_unix_nano,
    )
    for segment in singles:
        if total <= max_messages:
            return omitted
        total -= len(segment.messages)
        omitted += len(segment.messages)
        segments.remove(segment)
    for segment in sorted((s for s in segments if s.failing), key=lambda s: -s.start_unix_nano):
        if total <= max_messages:
            return omitted
        dropped = segment.failed_only()
        total -= dropped
        omitted += dropped
    folded = sorted(
        (s for s in segments if s.folded > 1), key=lambda s: (s.folded, -s.start_unix_nano)
    )
    for segment in folded:
        if total <= max_messages:
            return omitted
        total -= segment.size()
        omitted += segment.size()
        segments.remove(segment)
    return omitted


def _assemble(
    full: Diagram,
    traces: Sequence[str],
    segments: list[_Segment],
    entity: tuple[str, str] | None,
    max_messages: int,
    summary: str,
) -> Diagram:
    folded = sum(s.folded for s in segments if s.folded > 1)
    drawings = sum(1 for s in segments if s.folded > 1)
    failing = sum(1 for s in segments if s.failing)
    summary += (
        f": over the limit of {max_messages} messages, so {folded} traces that made the same "
        f"calls are folded into {drawings} drawing(s), and the {failing} trace(s) with a "
        "failure keep every failed message"
    )
    omitted = _cap(segments, max_messages)
    segments = [segment.made() for segment in segments]
    messages: list[Message] = []
    blocks: list[Block] = []
    notes: list[Note] = []
    sections: list[Section] = []
    participants: dict[str, Participant] = {p.id: p for p in full.participants}
    for segment in segments:
        for participant in segment.participants:
            participants.setdefault(participant.id, participant)
        offset = len(messages)
        messages += segment.messages
        blocks += [
            dataclasses.replace(
                b,
                first=b.first + offset,
                last=b.last + offset,
                branches=tuple(i + offset for i in b.branches),
            )
            for b in segment.blocks
        ]
        notes += [dataclasses.replace(n, index=n.index + offset) for n in segment.notes]
        sections.append(
            Section(
                segment.trace_ids[0],
                offset,
                len(messages) - 1,
                segment.start_unix_nano,
                segment.end_unix_nano,
            )
        )
    used = {m.source for m in messages} | {m.target for m in messages}
    if omitted:
        summary += f"; {omitted} more successful messages omitted"
    notes.insert(0, Note(0, "omitted", summary))
    return Diagram(
        entity=Entity(*entity) if entity else None,
        traces=tuple(traces),
        participants=tuple(p for p in participants.values() if p.id in used) or full.participants,
        messages=tuple(messages),
        blocks=tuple(sorted(blocks, key=lambda b: (b.first, -b.last, b.kind))),
        notes=tuple(sorted(notes, key=lambda n: n.index)),
        sections=tuple(sections),
        omitted_messages=omitted,
    )

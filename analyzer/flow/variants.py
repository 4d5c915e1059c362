"""Traces folded into variants: one sequence per distinct shape, with counts and latencies.

The input is a list of :class:`StructureGroup`: traces known to draw the same structure
(the same spans in the same places), each group with one *representative* whose spans
were arranged by the diagram builder, and per member only what the counts need: its
outcome, its duration, and each span's duration and error flag by *position* (the span's
index in start order). From a store, groups come from a fingerprint the database computes
(``spanstore/sql/*/flow_root_shapes.sql``), so only one trace per group is ever turned into
span objects; from spans in memory every trace is its own group.

Groups whose representatives normalise to one shape key (:mod:`analyzer.flow.shape`) make
one :class:`Variant`. Percentiles are nearest-rank: the ceil(q*n)-th smallest value.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from analyzer.diagram.build import ArrangedTraces, arrange_traces
from analyzer.diagram.model import Block, Diagram, Entity, Message, Participant
from analyzer.flow.shape import Normalised, ShapeKey, normalise
from spanstore.model import Span

__all__ = [
    "MAX_EXAMPLES",
    "Member",
    "MessageStats",
    "Outcome",
    "StructureGroup",
    "Variant",
    "fold",
    "groups_of_spans",
    "make_variant",
    "percentile",
    "shapes",
]

Outcome: TypeAlias = Literal["ok", "partial", "failed"]
Mark: TypeAlias = Literal["extra", "failed"]
#: Example trace ids kept per variant (and per folded message), failing first.
MAX_EXAMPLES = 20
_OUTCOME_RANK = {"failed": 0, "partial": 1, "ok": 2}


def percentile(sorted_values: Sequence[int] | npt.NDArray[np.int64], q: float) -> int:
    """Nearest rank: the ceil(q*n)-th smallest of ``sorted_values`` (0 when empty)."""
    n = len(sorted_values)
    if n == 0:
        return 0
    rank = max(1, math.ceil(q * n))
    return int(sorted_values[rank - 1])


@dataclass
class Member:
    """One selected trace (with ``--key``: one entity's traces) of a structure group."""

    name: str
    trace_ids: tuple[str, ...]
    start_unix_nano: int
    duration_ns: int
    outcome: Outcome
    #: Per position (the group's span order): the span's duration and whether it failed.
    durations: Sequence[int]
    errors: Sequence[bool]


@dataclass
class StructureGroup:
    arranged: ArrangedTraces
    #: (trace id, span id) of each representative span -> its position.
    positions: dict[tuple[str, str], int]
    members: list[Member]
    _matrices: tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]] | None = None

    def matrices(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        """Members x positions: span durations and error flags (computed once)."""
        if self._matrices is None:
            self._matrices = (
                np.asarray([m.durations for m in self.members], dtype=np.int64),
                np.asarray([m.errors for m in self.members], dtype=bool),
            )
        return self._matrices


@dataclass(frozen=True, slots=True)
class MessageStats:
    count: int
    errors: int
    p50_ns: int
    p95_ns: int


@dataclass
class Variant:
    id: str
    key: ShapeKey
    members: list[Member]
    #: The most common group's messages (labels templated), counted over every member.
    diagram: Diagram
    stats: list[MessageStats]
    #: Per message: how it differs from the most frequent variant's (None: it does not).
    marks: list[Mark | None] = field(default_factory=list)
    #: Messages of the most frequent variant this one lacks, as ``FROM->TO: label``.
    missing: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.members)

    def outcomes(self) -> dict[Outcome, int]:
        counts: dict[Outcome, int] = {"ok": 0, "partial": 0, "failed": 0}
        for member in self.members:
            counts[member.outcome] += 1
        return counts

    def examples(self) -> list[str]:
        """Up to :data:`MAX_EXAMPLES` trace ids, failing first, then partial, oldest first."""
        ordered = sorted(
            self.members,
            key=lambda m: (_OUTCOME_RANK[m.outcome], m.start_unix_nano, m.name),
        )
        ids: list[str] = []
        for member in ordered:
            for trace_id in member.trace_ids:
                if trace_id not in ids:
                    ids.append(trace_id)
            if len(ids) >= MAX_EXAMPLES:
                break
        return ids[:MAX_EXAMPLES]

    def duration_percentiles(self) -> tuple[int, int]:
        values = np.sort(np.fromiter((m.duration_ns for m in self.members), dtype=np.int64))
        return percentile(values, 0.5), percentile(values, 0.95)


# --- groups from spans in memory ----------------------------------------------------------


def _outcome(spans: Iterable[Span]) -> Outcome:
    failed = partial = False
    for span in spans:
        if span.is_error:
            partial = True
            if not span.parent_span_id:
                failed = True
    return "failed" if failed else ("partial" if partial else "ok")


def groups_of_spans(
    spans: Iterable[Span],
    members: Sequence[tuple[str, Sequence[str]]] | None = None,
    *,
    show_internal: bool = False,
) -> list[StructureGroup]:
    """Every trace of ``spans`` its own group; or, given ``members`` ((name, trace ids)
    per entity value), every member's traces together."""
    by_trace: dict[str, list[Span]] = {}
    for span in spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    wanted = members if members is not None else [(tid, (tid,)) for tid in sorted(by_trace)]
    groups: list[StructureGroup] = []
    for name, trace_ids in wanted:
        own = [span for tid in trace_ids for span in by_trace.get(tid, [])]
        if not own:
            continue
        arranged = arrange_traces(own, show_internal=show_internal)
        # Position order: start time, then span id (as the store's fingerprint counts them).
        kept = [span for tree in arranged.trees for span in tree.spans.values()]
        kept.sort(key=lambda s: (s.start_unix_nano, s.trace_id, s.span_id))
        positions = {(s.trace_id, s.span_id): i for i, s in enumerate(kept)}
        start = min(s.start_unix_nano for s in kept)
        end = max(s.end_unix_nano for s in kept)
        member = Member(
            name=name,
            trace_ids=tuple(tree.trace_id for tree in arranged.trees),
            start_unix_nano=start,
            duration_ns=end - start,
            outcome=_outcome(kept),
            durations=[s.duration_ns for s in kept],
            errors=[s.is_error for s in kept],
        )
        groups.append(StructureGroup(arranged, positions, [member]))
    return groups


# --- folding ------------------------------------------------------------------------------


def _normalised(arranged: ArrangedTraces) -> Normalised:
    parts = [normalise(items) for items in arranged.items]
    whole = Normalised(())
    for part in parts:
        whole.extend(part)
    whole.key = tuple(part.key for part in parts)
    return whole


def _variant_id(key: ShapeKey) -> str:
    return hashlib.blake2b(repr(key).encode("utf-8"), digest_size=6).hexdigest()


#: The groups of one variant, each with its normalised shape.
Parts: TypeAlias = list[tuple[StructureGroup, Normalised]]


def shapes(groups: Sequence[StructureGroup]) -> dict[ShapeKey, Parts]:
    """``groups`` by shape key (in the order the keys first turn up): each key one variant,
    which :func:`make_variant` makes; :func:`fold` makes and ranks all of them."""
    by_key: dict[ShapeKey, Parts] = {}
    for group in groups:
        if not group.members:
            continue
        shape = _normalised(group.arranged)
        by_key.setdefault(shape.key, []).append((group, shape))
    return by_key


def fold(groups: Sequence[StructureGroup], entity: tuple[str, str] | None = None) -> list[Variant]:
    """The variants of ``groups``: most frequent first (then more failures, then id)."""
    variants = [make_variant(key, parts, entity) for key, parts in shapes(groups).items()]
    variants.sort(key=lambda v: (-v.count, -v.outcomes()["failed"], v.id))
    if variants:
        top = variants[0]
        for variant in variants[1:]:
            _mark_differences(variant, top)
    return variants


def make_variant(key: ShapeKey, parts: Parts, entity: tuple[str, str] | None = None) -> Variant:
    """The variant of the groups of one shape key (differences from another not marked)."""
    # The drawing is the biggest group's (ties: the one with the oldest member).
    parts.sort(key=lambda p: (-len(p[0].members), min(m.start_unix_nano for m in p[0].members)))
    group, shape = parts[0]
    members = [member for g, _ in parts for member in g.members]
    stats = [_slot_stats(parts, index) for index in range(len(shape.slots))]
    messages, participants = group.arranged.finish([slot.template for slot in shape.slots])
    blocks = [_block_label(block, parts) for block in shape.blocks] + _loops(shape, parts)
    made = Variant(
        id=_variant_id(key),
        key=key,
        members=members,
        diagram=Diagram(
            entity=Entity(*entity) if entity else None,
            traces=(),
            participants=_used(participants, messages),
            messages=tuple(messages),
            blocks=tuple(sorted(blocks, key=lambda b: (b.first, -b.last, b.kind))),
        ),
        stats=stats,
        marks=[None] * len(messages),
    )
    made.diagram = dataclasses.replace(made.diagram, traces=tuple(made.examples()))
    return made


def _used(
    participants: tuple[Participant, ...], messages: list[Message]
) -> tuple[Participant, ...]:
    """The lifelines the variant's messages touch (a service whose spans are all hidden
    internal ones draws nothing here)."""
    touched = {m.source for m in messages} | {m.target for m in messages}
    return tuple(p for p in participants if p.id in touched)


def _slot_stats(parts: list[tuple[StructureGroup, Normalised]], index: int) -> MessageStats:
    durations: list[npt.NDArray[np.int64]] = []
    count = errors = 0
    for group, shape in parts:
        raw = shape.slots[index].raw
        own = [group.positions[(m.trace_id, m.span_id)] for m in raw]
        server = [
            group.positions.get((m.trace_id, m.server_span_id), own[i])
            if m.server_span_id
            else own[i]
            for i, m in enumerate(raw)
        ]
        matrix, failed = group.matrices()
        durations.append(matrix[:, own].ravel())
        errors += int((failed[:, own] | failed[:, server]).sum())
        count += len(group.members) * len(own)
    values = np.sort(np.concatenate(durations)) if durations else np.zeros(0, dtype=np.int64)
    return MessageStats(count, errors, percentile(values, 0.5), percentile(values, 0.95))


def _block_label(block: Block, parts: list[tuple[StructureGroup, Normalised]]) -> Block:
    return dataclasses.replace(block, label=f"{len(block.branches)} concurrent")


def _loops(shape: Normalised, parts: list[tuple[StructureGroup, Normalised]]) -> list[Block]:
    """A ``loop`` block for each call that ran more than once in some trace, labelled with
    how many times it ran (a group's slot holds its representative's run: one trace)."""
    blocks: list[Block] = []
    for index, (first, last) in enumerate(shape.runs):
        runs = sorted({len(other.slots[other.runs[index][0]].raw) for _, other in parts})
        low, high = runs[0], runs[-1]
        if high > 1:
            label = f"{low} times" if low == high else f"{low}-{high} times"
            blocks.append(Block("loop", label, first, last))
    return blocks


# --- differences from the most frequent variant ---------------------------------------------


def message_name(message: Message) -> str:
    """``FROM->TO: label`` (``->>`` for async), as contract violations name messages."""
    arrow = "->>" if message.kind == "async" else "->"
    return f"{message.source}{arrow}{message.target}: {message.label}"


def _comparable(message: Message) -> tuple[str, str, str, str]:
    label = "" if message.kind == "return" else message.label
    return (message.source, message.target, label, message.kind)


def _mark_differences(variant: Variant, top: Variant) -> None:
    mine = variant.diagram.messages
    theirs = top.diagram.messages
    matcher = difflib.SequenceMatcher(
        None, [_comparable(m) for m in theirs], [_comparable(m) for m in mine], autojunk=False
    )
    marks: list[Mark | None] = [None] * len(mine)
    missing: list[str] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for offset in range(i2 - i1):
                if mine[j1 + offset].is_error and not theirs[i1 + offset].is_error:
                    marks[j1 + offset] = "failed"
            continue
        for j in range(j1, j2):
            marks[j] = "extra"
        missing += [message_name(m) for m in theirs[i1:i2] if m.kind != "return"]
    variant.marks = marks
    variant.missing = missing

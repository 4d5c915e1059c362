"""Spans in, one sequence diagram out: the rules of docs/diagrams.md.

The builder walks each trace's span tree depth-first (siblings by start time, traces
oldest first) and turns spans into *units*: an opening message (a call, an async hop, a
self-call), the units drawn beneath it, and the closing return. Siblings are then
arranged: overlapping ones into ``par`` blocks, consecutive identical ones into ``loop``
blocks (collapsed into one counted message past a limit). Flattening the units gives the
messages in drawing order and the blocks' index ranges.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from analyzer.diagram.model import (
    Block,
    Diagram,
    Entity,
    Link,
    Message,
    MessageKind,
    Note,
    Participant,
    ParticipantKind,
    Section,
)
from analyzer.diagram.semantics import (
    Peer,
    attribute_summary,
    call_label,
    call_peer,
    error_text,
    operation_label,
    peer_kind_of_service,
    queue_peer,
    return_label,
)
from analyzer.diagram.text import TIMES, format_span_of_time, label_text
from analyzer.diagram.tree import MAX_DEPTH, TraceTree, build_tree, dedupe
from spanstore.model import Span

__all__ = [
    "DEFAULT_GAP_NS",
    "ArrangedTraces",
    "Group",
    "Item",
    "Unit",
    "arrange_traces",
    "build_diagram",
]

#: Traces further apart than this get a divider saying how much time passed.
DEFAULT_GAP_NS = 60 * 1_000_000_000
DEFAULT_COLLAPSE_REPEATS = 10

# A placeholder for the caller of root requests, renamed to a free id at the end (a
# service may well be called "client").
_CALLER = "\x00caller"
_CALLER_NAMES = ("client", "caller", "user-agent")
_UNKNOWN_PEER = Peer("unknown", "unknown peer", "external")
_UNKNOWN_QUEUE = Peer("queue", "queue", "queue")
_ASYNC_KINDS = ("CLIENT", "PRODUCER")


@dataclass
class Unit:
    """An opening message, what happens beneath it, and its return (if it has one)."""

    head: Message
    body: list[Item]
    tail: Message | None
    start: int
    end: int

    @property
    def signature(self) -> tuple[str, str, str, str]:
        return (self.head.source, self.head.target, self.head.label, self.head.kind)

    @property
    def order(self) -> tuple[int, int, str, str]:
        return (self.start, self.end, self.head.span_id, self.head.server_span_id or "")


@dataclass
class Group:
    kind: Literal["loop", "par"]
    label: str
    items: list[Item]


Item: TypeAlias = Unit | Group


def build_diagram(
    spans: Iterable[Span],
    entity: tuple[str, str] | None = None,
    *,
    show_internal: bool = False,
    max_messages: int = 500,
    skew_correction: bool = True,
    collapse_repeats: int = DEFAULT_COLLAPSE_REPEATS,
    gap_ns: int = DEFAULT_GAP_NS,
) -> Diagram:
    """The sequence diagram of ``spans`` (every trace that touched ``entity``).

    ``max_messages`` caps the drawing (0: no cap; a note says how many were left out);
    runs of more than ``collapse_repeats`` identical consecutive calls become one message
    with a count; traces more than ``gap_ns`` apart get a divider.
    """
    traces = dedupe(spans)
    trees = [build_tree(tid, by_id, skew_correction) for tid, by_id in sorted(traces.items())]
    trees.sort(key=lambda tree: (tree.start_unix_nano, tree.trace_id))
    builder = _Builder(trees, show_internal, max(1, collapse_repeats))
    for tree in trees:
        builder.add_trace(tree)
    builder.add_gap_notes(gap_ns)
    builder.cap(max_messages)
    return builder.diagram(Entity(*entity) if entity else None)


@dataclass
class _Registry:
    """Participants as they turn up; a real service outranks a peer of the same name."""

    labels: dict[str, str] = field(default_factory=dict)
    kinds: dict[str, ParticipantKind] = field(default_factory=dict)

    def add(self, participant_id: str, label: str, kind: ParticipantKind) -> str:
        if participant_id not in self.kinds or kind == "service":
            self.labels.setdefault(participant_id, label)
            self.kinds[participant_id] = kind
        return participant_id

    def add_peer(self, peer: Peer) -> str:
        return self.add(peer.id, peer.label, peer.kind)


class _Builder:
    def __init__(self, trees: list[TraceTree], show_internal: bool, repeats: int) -> None:
        self.trees = trees
        self.show_internal = show_internal
        self.repeats = repeats
        self.registry = _Registry()
        self.services = frozenset(
            span.service_name for tree in trees for span in tree.spans.values()
        )
        self.spans_by_key = {
            (span.trace_id, span.span_id): span for tree in trees for span in tree.spans.values()
        }
        self.linked_from = self._reverse_links()
        self.messages: list[Message] = []
        self.blocks: list[Block] = []
        self.notes: list[Note] = []
        self.sections: list[Section] = []
        self.omitted = 0

    # --- traces ---------------------------------------------------------------------------

    def add_trace(self, tree: TraceTree) -> None:
        first = len(self.messages)
        units: list[Unit] = []
        for root in tree.roots:
            units += self.walk(tree, root, None)
        self._flatten(self.arrange(units))
        self.sections.append(
            Section(
                tree.trace_id,
                first,
                len(self.messages) - 1,
                tree.start_unix_nano,
                tree.end_unix_nano,
            )
        )
        self._trace_notes(tree, first)

    def _trace_notes(self, tree: TraceTree, index: int) -> None:
        missing = sum(
            1 for span_id in tree.orphans if tree.spans[span_id].parent_span_id not in tree.spans
        )
        if missing:
            text = f"partial trace: {missing} span(s) whose parent is missing drawn at top level"
            self.notes.append(Note(index, "partial", text))
        if tree.cut_deep:
            text = (
                f"{tree.cut_deep} span(s) nested deeper than {MAX_DEPTH} levels drawn at top level"
            )
            self.notes.append(Note(index, "partial", text))
        for service, delta in _skew_by_service(tree):
            text = f"clock skew corrected: {service} shifted by {delta / 1_000_000:+.1f} ms"
            self.notes.append(Note(index, "skew", text, (service,)))

    def add_gap_notes(self, gap_ns: int) -> None:
        latest_end: int | None = None
        for section in self.sections:
            if latest_end is not None and section.start_unix_nano - latest_end > gap_ns:
                gap = section.start_unix_nano - latest_end
                text = f"{format_span_of_time(gap)} later"
                self.notes.append(Note(section.first, "gap", text, gap_ns=gap))
            end = section.end_unix_nano
            latest_end = end if latest_end is None else max(latest_end, end)

    # --- spans to units -------------------------------------------------------------------

    def walk(self, tree: TraceTree, span: Span, lane: str | None) -> list[Unit]:
        """The units a span draws; ``lane`` is the participant its parent works on."""
        if span.kind == "SERVER":
            return self._server(tree, span, lane)
        if span.kind == "CONSUMER":
            return self._consumer(tree, span, lane)
        if span.kind == "CLIENT":
            return self._client(tree, span, lane)
        if span.kind == "PRODUCER":
            return self._producer(tree, span, lane)
        return self._internal(tree, span, lane)

    def _children(self, tree: TraceTree, span: Span, lane: str | None) -> list[Unit]:
        units: list[Unit] = []
        for child in tree.kids(span):
            units += self.walk(tree, child, lane)
        return units

    def _server(self, tree: TraceTree, span: Span, lane: str | None) -> list[Unit]:
        service = self._service(span)
        if lane == service:
            # A second SERVER span inside the same service (framework layers) adds nothing.
            return self._internal(tree, span, lane)
        return [self._entry(tree, span, lane)]

    def _entry(self, tree: TraceTree, span: Span, lane: str | None) -> Unit:
        """A span entered from another participant without a CLIENT span of its own."""
        service = self._service(span)
        caller = lane if lane is not None else _CALLER
        body = self.arrange(self._children(tree, span, service))
        label = operation_label(span).text
        return self._call(caller, service, label, span, None, body)

    def _internal(self, tree: TraceTree, span: Span, lane: str | None) -> list[Unit]:
        service = self._service(span)
        if lane is not None and lane != service:
            return [self._entry(tree, span, lane)]
        units = self._children(tree, span, service)
        # A failed internal step is shown even when internal spans are hidden: errors are
        # what the reader is looking for.
        if not (self.show_internal or span.is_error):
            return units
        head = self._message(service, service, operation_label(span).text, "self", span)
        return [Unit(head, self.arrange(units), None, span.start_unix_nano, span.end_unix_nano)]

    def _caller_of(self, tree: TraceTree, span: Span, lane: str | None) -> tuple[str, bool]:
        """Who makes an outgoing call, and whether the span was re-attributed to them.

        A CLIENT/PRODUCER span reported under its own service name but nested directly in
        another service's span (HotROD's ``mysql``/``redis-manual``) was emitted by a
        client library inside the parent's process: the parent's service makes the call,
        to the span's service.
        """
        service = span.service_name
        parent = tree.parent_of(span)
        foreign = lane is not None and lane != service
        if foreign and parent is not None and parent.kind not in _ASYNC_KINDS:
            assert lane is not None
            return lane, True
        return self._service(span), False

    def _client(self, tree: TraceTree, span: Span, lane: str | None) -> list[Unit]:
        caller, reattributed = self._caller_of(tree, span, lane)
        kids = tree.kids(span)
        servers = [kid for kid in kids if kid.kind == "SERVER"]
        if servers:
            units = [self._answered(tree, span, server, caller) for server in servers]
            for kid in kids:
                if kid.kind != "SERVER":
                    units += self.walk(tree, kid, caller)
            return units
        peer = self._peer_of_client(span, reattributed)
        if peer is None and kids:
            # A logical grouping span ("user_checkout") with no peer of its own.
            return self._children(tree, span, caller)
        callee = self.registry.add_peer(peer or _UNKNOWN_PEER)
        body = self.arrange(self._children(tree, span, caller))
        return [self._call(caller, callee, operation_label(span).text, span, None, body)]

    def _peer_of_client(self, span: Span, reattributed: bool) -> Peer | None:
        if reattributed:
            name = span.service_name
            return Peer(name, label_text(name), peer_kind_of_service(span))
        return call_peer(span, self.services)

    def _answered(self, tree: TraceTree, client: Span, server: Span, caller: str) -> Unit:
        """A CLIENT span answered by its SERVER child: one call and one return."""
        service = self._service(server)
        body = self.arrange(self._children(tree, server, service))
        return self._call(caller, service, call_label(client, server), client, server, body)

    def _producer(self, tree: TraceTree, span: Span, lane: str | None) -> list[Unit]:
        caller, _ = self._caller_of(tree, span, lane)
        queue = self.registry.add_peer(
            queue_peer(span) or call_peer(span, self.services) or _UNKNOWN_QUEUE
        )
        head = self._message(caller, queue, operation_label(span).text, "async", span)
        head = dataclasses.replace(head, link=self._link_of(span, "CONSUMER"))
        body = self.arrange(self._children(tree, span, caller))
        return [Unit(head, body, None, span.start_unix_nano, span.end_unix_nano)]

    def _consumer(self, tree: TraceTree, span: Span, lane: str | None) -> list[Unit]:
        service = self._service(span)
        parent = tree.parent_of(span)
        queue = self._queue_of_consumer(tree, span)
        nested = lane == service and parent is not None and parent.kind == "CONSUMER"
        if nested or (lane == service and queue is None):
            return self._internal(tree, span, lane)
        source = self.registry.add_peer(queue) if queue else (lane or _CALLER)
        head = self._message(source, service, operation_label(span).text, "async", span)
        head = dataclasses.replace(head, link=self._link_of(span, "PRODUCER"))
        body = self.arrange(self._children(tree, span, service))
        return [Unit(head, body, None, span.start_unix_nano, span.end_unix_nano)]

    def _queue_of_consumer(self, tree: TraceTree, span: Span) -> Peer | None:
        own = queue_peer(span)
        if own:
            return own
        parent = tree.parent_of(span)
        if parent is not None and parent.kind == "PRODUCER":
            return queue_peer(parent) or _UNKNOWN_QUEUE
        for linked in self._linked_spans(span):
            if linked.kind == "PRODUCER":
                return queue_peer(linked) or _UNKNOWN_QUEUE
        return None

    # --- links ----------------------------------------------------------------------------

    def _reverse_links(self) -> dict[tuple[str, str], list[Span]]:
        """(trace id, span id) -> spans that link to it, so links count in both directions."""
        reverse: dict[tuple[str, str], list[Span]] = {}
        for span in self.spans_by_key.values():
            for link in span.links:
                reverse.setdefault((link.trace_id, link.span_id), []).append(span)
        return reverse

    def _linked_spans(self, span: Span) -> list[Span]:
        forward = [self.spans_by_key.get((link.trace_id, link.span_id)) for link in span.links]
        backward = self.linked_from.get((span.trace_id, span.span_id), [])
        found = [linked for linked in forward if linked is not None]
        return found + sorted(backward, key=lambda s: (s.start_unix_nano, s.span_id))

    def _link_of(self, span: Span, counterpart_kind: str) -> Link | None:
        for linked in self._linked_spans(span):
            if linked.kind == counterpart_kind:
                return Link(linked.trace_id, linked.span_id)
        if span.links:
            return Link(span.links[0].trace_id, span.links[0].span_id)
        return None

    # --- messages -------------------------------------------------------------------------

    def _service(self, span: Span) -> str:
        return self.registry.add(span.service_name, label_text(span.service_name), "service")

    def _message(
        self,
        source: str,
        target: str,
        label: str,
        kind: MessageKind,
        span: Span,
        server: Span | None = None,
    ) -> Message:
        spans = (span, server) if server else (span,)
        failed = any(s.is_error for s in spans)
        error = (error_text(server) if server else None) or error_text(span)
        return Message(
            source=source,
            target=target,
            label=label,
            kind="self" if source == target else kind,
            status="error" if failed else "ok",
            error=error if failed else None,
            start_unix_nano=span.start_unix_nano,
            duration_ns=span.duration_ns,
            trace_id=span.trace_id,
            span_id=span.span_id,
            server_span_id=server.span_id if server else None,
            attributes=attribute_summary(*spans),
        )

    def _call(
        self,
        caller: str,
        callee: str,
        label: str,
        span: Span,
        server: Span | None,
        body: list[Item],
    ) -> Unit:
        head = self._message(caller, callee, label, "call", span, server)
        tail = None
        if head.kind == "call":
            answer = return_label(*([server, span] if server else [span]))
            tail = dataclasses.replace(
                head,
                source=callee,
                target=caller,
                label=answer or ("error" if head.is_error else "ok"),
                kind="return",
                start_unix_nano=span.end_unix_nano,
                duration_ns=0,
            )
        return Unit(head, body, tail, span.start_unix_nano, span.end_unix_nano)

    # --- arranging siblings ---------------------------------------------------------------

    def arrange(self, units: list[Unit]) -> list[Item]:
        """Siblings in time order: overlapping ones in ``par``, repeated ones in ``loop``."""
        ordered = sorted(units, key=lambda unit: unit.order)
        items: list[Item] = []
        for cluster in _overlapping(ordered):
            if len(cluster) == 1:
                items.append(cluster[0])
            else:
                branches = self._collapse_runs(cluster)
                label = f"{len(cluster)} concurrent"
                items.append(
                    Group("par", label, list(branches)) if len(branches) > 1 else branches[0]
                )
        return self._loops(items)

    def _collapse_runs(self, units: list[Unit]) -> list[Unit]:
        """Concurrent identical calls beyond the limit become one counted message."""
        result: list[Unit] = []
        for run in _runs(units):
            if len(run) > self.repeats:
                result.append(self._collapsed(run))
            else:
                result += run
        return result

    def _loops(self, items: list[Item]) -> list[Item]:
        result: list[Item] = []
        index = 0
        while index < len(items):
            item = items[index]
            run = [item] if isinstance(item, Unit) else []
            while run and index + len(run) < len(items):
                following = items[index + len(run)]
                if not (isinstance(following, Unit) and following.signature == run[0].signature):
                    break
                run.append(following)
            result.append(self._loop(run) if len(run) > 1 else item)
            index += max(1, len(run))
        return result

    def _loop(self, run: list[Unit]) -> Group:
        failed = sum(1 for unit in run if unit.head.is_error)
        # Retries: every attempt but the last failed. Anything else is a repetition (N+1).
        retried = failed and all(unit.head.is_error for unit in run[:-1])
        if retried:
            label = f"retry: {len(run)} attempts, {failed} failed"
        else:
            label = f"{len(run)} times" + (f", {failed} failed" if failed else "")
        if len(run) > self.repeats:
            return Group("loop", label + ", collapsed", [self._collapsed(run)])
        return Group("loop", label, list(run))

    def _collapsed(self, run: list[Unit]) -> Unit:
        first = run[0]
        failed = sum(1 for unit in run if unit.head.is_error)
        errors = [unit.head.error for unit in run if unit.head.error]
        end = max(unit.end for unit in run)

        def counted(message: Message) -> Message:
            return dataclasses.replace(
                message,
                label=f"{message.label} {TIMES}{len(run)}",
                count=len(run),
                failed=failed,
                status="error" if failed else "ok",
                error=f"{failed} of {len(run)} failed: {errors[0]}" if errors else None,
            )

        head = dataclasses.replace(counted(first.head), duration_ns=end - first.start)
        tail = None
        last_tail = run[-1].tail
        if last_tail is not None:
            # The answer shown is the last one: how the repetition ended.
            tail = dataclasses.replace(counted(last_tail), start_unix_nano=end)
        return Unit(head, first.body, tail, first.start, end)

    # --- flattening -----------------------------------------------------------------------

    def _flatten(self, items: Sequence[Item]) -> None:
        for item in items:
            if isinstance(item, Unit):
                self.messages.append(item.head)
                self._flatten(item.body)
                if item.tail is not None:
                    self.messages.append(item.tail)
                continue
            first = len(self.messages)
            branches: list[int] = []
            for sub in item.items:
                branches.append(len(self.messages))
                self._flatten([sub])
            kept = tuple(branches) if item.kind == "par" else ()
            self.blocks.append(Block(item.kind, item.label, first, len(self.messages) - 1, kept))

    # --- the cap and the result -----------------------------------------------------------

    def cap(self, max_messages: int) -> None:
        if max_messages <= 0 or len(self.messages) <= max_messages:
            return
        self.omitted = len(self.messages) - max_messages
        del self.messages[max_messages:]
        self.blocks = [
            _clip_block(block, max_messages) for block in self.blocks if block.first < max_messages
        ]
        self.notes = [note for note in self.notes if note.index <= max_messages]
        self.sections = [_clip_section(section, max_messages) for section in self.sections]
        text = f"{self.omitted} more messages omitted (limit {max_messages})"
        self.notes.append(Note(max_messages, "omitted", text))

    def diagram(self, entity: Entity | None) -> Diagram:
        caller_id = self._free_caller_id()
        messages = [_rename(message, caller_id) for message in self.messages]
        notes = sorted(self.notes, key=lambda note: note.index)
        blocks = sorted(self.blocks, key=lambda b: (b.first, -b.last, b.kind))
        return Diagram(
            entity=entity,
            traces=tuple(tree.trace_id for tree in self.trees),
            participants=self._participants(messages, caller_id),
            messages=tuple(messages),
            blocks=tuple(blocks),
            notes=tuple(notes),
            sections=tuple(self.sections),
            omitted_messages=self.omitted,
        )

    def _free_caller_id(self) -> str:
        taken = set(self.registry.kinds) | self.services
        for name in _CALLER_NAMES:
            if name not in taken:
                return name
        number = 2
        while f"client-{number}" in taken:
            number += 1
        return f"client-{number}"

    def _participants(self, messages: list[Message], caller_id: str) -> tuple[Participant, ...]:
        order: dict[str, None] = {}
        for message in messages:
            order.setdefault(message.source)
            order.setdefault(message.target)
        for service in sorted(self.services):
            if service not in self.registry.kinds:
                self.registry.add(service, label_text(service), "service")
            order.setdefault(service)
        result: list[Participant] = []
        for participant_id in order:
            if participant_id == caller_id and participant_id not in self.registry.kinds:
                result.append(Participant(caller_id, "client", "external", implicit=True))
                continue
            label = self.registry.labels[participant_id]
            result.append(Participant(participant_id, label, self.registry.kinds[participant_id]))
        return tuple(result)


# --- helpers ------------------------------------------------------------------------------


def _overlapping(units: list[Unit]) -> list[list[Unit]]:
    """Clusters of units (in start order) whose time ranges chain into each other."""
    clusters: list[list[Unit]] = []
    cluster_end = 0
    for unit in units:
        if clusters and unit.start < cluster_end:
            clusters[-1].append(unit)
            cluster_end = max(cluster_end, unit.end)
        else:
            clusters.append([unit])
            cluster_end = unit.end
    return clusters


def _runs(units: list[Unit]) -> list[list[Unit]]:
    runs: list[list[Unit]] = []
    for unit in units:
        if runs and runs[-1][0].signature == unit.signature:
            runs[-1].append(unit)
        else:
            runs.append([unit])
    return runs


def _skew_by_service(tree: TraceTree) -> list[tuple[str, int]]:
    """The largest correction per service, in the order the services were first shifted."""
    largest: dict[str, int] = {}
    for span_id, delta in sorted(tree.shifts.items(), key=lambda kv: _order_key(tree, kv[0])):
        service = tree.spans[span_id].service_name
        if abs(delta) > abs(largest.get(service, 0)):
            largest[service] = delta
    return list(largest.items())


def _order_key(tree: TraceTree, span_id: str) -> tuple[int, str]:
    return (tree.spans[span_id].start_unix_nano, span_id)


def _clip_block(block: Block, limit: int) -> Block:
    branches = tuple(index for index in block.branches if index < limit)
    return dataclasses.replace(block, last=min(block.last, limit - 1), branches=branches)


def _clip_section(section: Section, limit: int) -> Section:
    first = min(section.first, limit)
    return dataclasses.replace(section, first=first, last=min(section.last, limit - 1))


def _rename(message: Message, caller_id: str) -> Message:
    if _CALLER not in (message.source, message.target):
        return message
    source = caller_id if message.source == _CALLER else message.source
    target = caller_id if message.target == _CALLER else message.target
    return dataclasses.replace(message, source=source, target=target)


# --- arranged traces, for readers of the structure (analyzer.flow) ------------------------


@dataclass
class ArrangedTraces:
    """Each trace's units and groups before flattening (``loop`` runs kept whole, never
    collapsed), with what turns their messages into a :class:`Diagram`'s participants."""

    trees: list[TraceTree]
    items: list[list[Item]]
    builder: _Builder

    def finish(self, messages: Sequence[Message]) -> tuple[list[Message], tuple[Participant, ...]]:
        """``messages`` (taken from these items) with the root caller named, and their
        participants, as :func:`build_diagram` names and orders them."""
        caller_id = self.builder._free_caller_id()
        renamed = [_rename(message, caller_id) for message in messages]
        return renamed, self.builder._participants(renamed, caller_id)


def arrange_traces(
    spans: Iterable[Span], *, show_internal: bool = False, skew_correction: bool = True
) -> ArrangedTraces:
    """The traces of ``spans`` (oldest first) as the diagram builder arranges them."""
    traces = dedupe(spans)
    trees = [build_tree(tid, by_id, skew_correction) for tid, by_id in sorted(traces.items())]
    trees.sort(key=lambda tree: (tree.start_unix_nano, tree.trace_id))
    # No run is ever collapsed: a reader of the structure folds runs its own way.
    builder = _Builder(trees, show_internal, 1 << 62)
    items: list[list[Item]] = []
    for tree in trees:
        units: list[Unit] = []
        for root in tree.roots:
            units += builder.walk(tree, root, None)
        items.append(builder.arrange(units))
    return ArrangedTraces(trees, items, builder)

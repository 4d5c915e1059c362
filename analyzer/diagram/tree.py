"""Spans into per-trace trees: dedup, parent links, orphans, and clock-skew correction.

Partial traces are the norm while spans still arrive, so nothing is dropped: a span whose
parent is missing (or whose parent chain loops back on itself) becomes a root of its
trace, drawn at top level in time order. Trees deeper than :data:`MAX_DEPTH` are cut there
and the deeper spans become roots too, so that a hostile or broken trace cannot exhaust
the recursion of the builder.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field

from spanstore.model import Span

MAX_DEPTH = 150


def span_order(span: Span) -> tuple[int, int, str]:
    """Drawing order of siblings: by start time; ties by end time, then span id."""
    return (span.start_unix_nano, span.end_unix_nano, span.span_id)


@dataclass
class TraceTree:
    trace_id: str
    spans: dict[str, Span]
    children: dict[str, list[Span]]
    roots: list[Span]
    orphans: set[str] = field(default_factory=set)
    cut_deep: int = 0
    #: span id -> nanoseconds added to its timestamps by clock-skew correction
    shifts: dict[str, int] = field(default_factory=dict)

    @property
    def start_unix_nano(self) -> int:
        return min(span.start_unix_nano for span in self.spans.values())

    @property
    def end_unix_nano(self) -> int:
        return max(span.end_unix_nano for span in self.spans.values())

    def parent_of(self, span: Span) -> Span | None:
        if span.span_id in self.orphans or span.parent_span_id is None:
            return None
        parent = self.spans.get(span.parent_span_id)
        return None if parent is None or parent.span_id == span.span_id else parent

    def kids(self, span: Span) -> list[Span]:
        return self.children.get(span.span_id, [])


def _prefer(kept: Span, other: Span) -> Span:
    """Of two copies of one span (delivered twice), keep the more complete one."""
    rank_kept = (kept.end_unix_nano, kept.is_error, len(kept.attributes), kept.name)
    rank_other = (other.end_unix_nano, other.is_error, len(other.attributes), other.name)
    return other if rank_other > rank_kept else kept


def dedupe(spans: Iterable[Span]) -> dict[str, dict[str, Span]]:
    """trace id -> span id -> span, each span once."""
    traces: dict[str, dict[str, Span]] = {}
    for span in spans:
        by_id = traces.setdefault(span.trace_id, {})
        known = by_id.get(span.span_id)
        by_id[span.span_id] = span if known is None else _prefer(known, span)
    return traces


def build_tree(trace_id: str, spans: dict[str, Span], skew_correction: bool) -> TraceTree:
    tree = _link(trace_id, spans)
    _cut_loops(tree)
    _cut_deep(tree)
    if skew_correction:
        _correct_skew(tree)
    _sort(tree)
    return tree


def _link(trace_id: str, spans: dict[str, Span]) -> TraceTree:
    children: dict[str, list[Span]] = {}
    roots: list[Span] = []
    orphans: set[str] = set()
    for span in spans.values():
        parent_id = span.parent_span_id
        if parent_id and parent_id != span.span_id and parent_id in spans:
            children.setdefault(parent_id, []).append(span)
        else:
            roots.append(span)
            if parent_id:
                orphans.add(span.span_id)
    return TraceTree(trace_id, dict(spans), children, roots, orphans)


def _reachable(tree: TraceTree) -> set[str]:
    seen: set[str] = set()
    stack = [span.span_id for span in tree.roots]
    while stack:
        span_id = stack.pop()
        if span_id in seen:
            continue
        seen.add(span_id)
        stack.extend(child.span_id for child in tree.children.get(span_id, []))
    return seen


def _cut_loops(tree: TraceTree) -> None:
    """Parent chains that loop reach no root: break each loop at its earliest span."""
    reached = _reachable(tree)
    while len(reached) < len(tree.spans):
        stranded = [span for span in tree.spans.values() if span.span_id not in reached]
        first = min(stranded, key=span_order)
        _detach(tree, first)
        reached = _reachable(tree)


def _detach(tree: TraceTree, span: Span) -> None:
    if span.parent_span_id in tree.children:
        siblings = tree.children[span.parent_span_id]
        tree.children[span.parent_span_id] = [s for s in siblings if s.span_id != span.span_id]
    tree.roots.append(span)
    tree.orphans.add(span.span_id)


def _cut_deep(tree: TraceTree) -> None:
    stack = [(span, 0) for span in tree.roots]
    while stack:
        span, depth = stack.pop()
        for child in list(tree.children.get(span.span_id, [])):
            if depth + 1 > MAX_DEPTH:
                _detach(tree, child)
                tree.cut_deep += 1
                stack.append((child, 0))
            else:
                stack.append((child, depth + 1))


def clock_domain(span: Span) -> str:
    """Spans on one host share a clock; without a host name, assume one clock per service."""
    host = span.resource_attributes.get("host.name") or span.resource_attributes.get("host.id")
    if isinstance(host, str) and host:
        return "host:" + host
    return "service:" + span.service_name


def _is_async_edge(parent: Span, child: Span) -> bool:
    return parent.kind == "PRODUCER" or child.kind == "CONSUMER"


def skew_delta(parent: Span, child: Span) -> int:
    """Nanoseconds to add to ``child`` (on another clock) so that it sits inside ``parent``.

    Jaeger's rule: a child that fits is left alone; one that sticks out is centred in its
    parent, assuming the network latency splits evenly between request and response. A
    child longer than its parent, or one reached asynchronously, is only moved when it
    starts before its parent, and then just to the parent's start.
    """
    parent_duration = parent.end_unix_nano - parent.start_unix_nano
    child_duration = child.end_unix_nano - child.start_unix_nano
    if parent_duration < child_duration or _is_async_edge(parent, child):
        return max(0, parent.start_unix_nano - child.start_unix_nano)
    fits = (
        child.start_unix_nano >= parent.start_unix_nano
        and child.end_unix_nano <= parent.end_unix_nano
    )
    if fits:
        return 0
    latency = (parent_duration - child_duration) // 2
    return parent.start_unix_nano + latency - child.start_unix_nano


def _shifted(span: Span, delta: int) -> Span:
    if not delta:
        return span
    return dataclasses.replace(
        span,
        start_unix_nano=span.start_unix_nano + delta,
        end_unix_nano=span.end_unix_nano + delta,
    )


def _correct_skew(tree: TraceTree) -> None:
    """Top-down: a span on its parent's clock inherits the parent's shift; others get their own."""
    stack = list(tree.roots)
    while stack:
        span = tree.spans[stack.pop().span_id]
        inherited = tree.shifts.get(span.span_id, 0)
        for child in tree.children.get(span.span_id, []):
            delta = inherited
            if clock_domain(child) != clock_domain(span):
                delta = skew_delta(span, child)
            if delta:
                tree.shifts[child.span_id] = delta
                tree.spans[child.span_id] = _shifted(child, delta)
            stack.append(child)
    _refresh_links(tree)


def _refresh_links(tree: TraceTree) -> None:
    """Point the child lists and roots at the shifted copies of the spans."""
    tree.roots = [tree.spans[span.span_id] for span in tree.roots]
    for parent_id, kids in tree.children.items():
        tree.children[parent_id] = [tree.spans[span.span_id] for span in kids]


def _sort(tree: TraceTree) -> None:
    tree.roots.sort(key=span_order)
    for kids in tree.children.values():
        kids.sort(key=span_order)

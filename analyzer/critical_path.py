"""The critical path of a trace: the chain of work that decided how long it took.

Jaeger's algorithm (``jaeger-ui/.../CriticalPath``): start at the root span's end and walk
backwards in time. In the current span, take the child that finished last before the
point reached so far; the time between that child's end and the point belongs to the
current span itself, and the walk continues inside the child. A span without such a child
owns the time back to its start, and the walk returns to its parent at that start.

Before walking, children are clipped to their parent's interval (clocks on different
hosts drift; a child that starts after its parent ended is dropped), as Jaeger does.

Works on the flat span dicts of ``Source.trace()`` (``span_id``, ``parent_span_id``,
``start_unix_nano``, ``end_unix_nano``); pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Section", "critical_path", "pick_root"]


@dataclass(frozen=True, slots=True)
class Section:
    """A stretch of time the trace spent in one span, on the critical path."""

    span_id: str
    start_unix_nano: int
    end_unix_nano: int

    @property
    def duration_ns(self) -> int:
        return self.end_unix_nano - self.start_unix_nano


@dataclass(slots=True)
class _Node:
    span_id: str
    parent: str | None
    start: int
    end: int
    children: list[str]


def pick_root(spans: Iterable[Mapping[str, Any]]) -> str | None:
    """The span the trace hangs from: a span without a (present) parent; of several, the
    earliest to start, then the longest."""
    items = list(spans)
    ids = {str(s["span_id"]) for s in items}
    roots = [s for s in items if not s.get("parent_span_id") or s["parent_span_id"] not in ids]
    if not roots:
        return None
    best = min(
        roots,
        key=lambda s: (int(s["start_unix_nano"]), -int(s["end_unix_nano"]), str(s["span_id"])),
    )
    return str(best["span_id"])


def _clipped_tree(spans: list[Mapping[str, Any]], root: str) -> dict[str, _Node]:
    by_parent: dict[str, list[Mapping[str, Any]]] = {}
    by_id: dict[str, Mapping[str, Any]] = {}
    for span in spans:
        sid = str(span["span_id"])
        by_id[sid] = span
        parent = span.get("parent_span_id")
        if parent:
            by_parent.setdefault(str(parent), []).append(span)
    top = by_id[root]
    nodes: dict[str, _Node] = {
        root: _Node(root, None, int(top["start_unix_nano"]), int(top["end_unix_nano"]), [])
    }
    stack = [root]
    while stack:
        current = nodes[stack.pop()]
        for child in by_parent.get(current.span_id, []):
            cid = str(child["span_id"])
            if cid in nodes:  # a cycle in broken data: ignore the back edge
                continue
            start = max(int(child["start_unix_nano"]), current.start)
            end = min(int(child["end_unix_nano"]), current.end)
            if start > current.end or end < start:
                continue  # starts after the parent ended: not on any path of the parent
            nodes[cid] = _Node(cid, current.span_id, start, end, [])
            current.children.append(cid)
            stack.append(cid)
    for node in nodes.values():  # last to finish first
        node.children.sort(key=lambda c: (nodes[c].end, nodes[c].start), reverse=True)
    return nodes


def critical_path(spans: Iterable[Mapping[str, Any]], root: str | None = None) -> list[Section]:
    """The critical path's sections, earliest first. Empty for an empty trace."""
    items = list(spans)
    root = root or pick_root(items)
    if root is None:
        return []
    nodes = _clipped_tree(items, root)
    sections: list[Section] = []
    current: str | None = root
    point = nodes[root].end  # walking backwards from here
    returning = False  # False: just entered ``current``; True: came back from a child
    # Entering a span takes its last-finishing child; coming back from a child at
    # ``point`` (that child's start) takes the last child that finished strictly before.
    # ``point`` never grows and strictly shrinks on each such step, so this terminates.
    while current is not None:
        node = nodes[current]
        if returning:
            child = next((c for c in node.children if nodes[c].end < point), None)
        else:
            child = node.children[0] if node.children else None
        if child is not None:
            child_end = min(nodes[child].end, point)
            if child_end < point:
                sections.append(Section(current, child_end, point))
            point = child_end
            current = child
            returning = False
            continue
        if point > node.start:
            sections.append(Section(current, node.start, point))
        point = min(point, node.start)
        current = node.parent
        returning = True
    sections.reverse()
    return _merge(sections)


def _merge(sections: list[Section]) -> list[Section]:
    """Join adjacent sections of the same span (a span resumed between two children)."""
    out: list[Section] = []
    for section in sections:
        if (
            out
            and out[-1].span_id == section.span_id
            and out[-1].end_unix_nano == section.start_unix_nano
        ):
            out[-1] = Section(section.span_id, out[-1].start_unix_nano, section.end_unix_nano)
        else:
            out.append(section)
    return out

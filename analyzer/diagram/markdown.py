"""A Markdown report: a title, the Mermaid diagram in a fence, then a table of the calls.

Escaping: the title and table cells are one line each with ``|`` escaped and HTML's
``& < >`` written as entities, and Markdown's inline markers backslash-escaped, so span
text can neither end a cell or row nor become a link, image, emphasis or raw HTML. The
Mermaid block cannot close its fence: Mermaid escaping encodes every backtick.
"""

from __future__ import annotations

from analyzer.diagram import mermaid
from analyzer.diagram.model import Diagram, Message
from analyzer.diagram.text import format_duration, format_offset, format_utc
from analyzer.escaping import markdown_cell

__all__ = ["render"]


def title(diagram: Diagram) -> str:
    if diagram.entity:
        return f"Sequence diagram: {diagram.entity.key} = {diagram.entity.value}"
    if len(diagram.traces) == 1:
        return f"Sequence diagram: trace {diagram.traces[0]}"
    return "Sequence diagram"


def render(diagram: Diagram) -> str:
    lines = [f"# {markdown_cell(title(diagram))}", "", _summary(diagram), ""]
    lines += ["```mermaid", mermaid.render(diagram).rstrip("\n"), "```", ""]
    lines += _calls_table(diagram)
    lines += _notes(diagram)
    return "\n".join(lines).rstrip("\n") + "\n"


def _summary(diagram: Diagram) -> str:
    errors = sum(1 for m in diagram.messages if m.is_error and m.kind != "return")
    parts = [
        f"{len(diagram.traces)} trace(s)",
        f"{len(diagram.participants)} participants",
        f"{len(diagram.messages)} messages",
        f"{errors} failed call(s)",
    ]
    if diagram.sections:
        first = min(s.start_unix_nano for s in diagram.sections)
        last = max(s.end_unix_nano for s in diagram.sections)
        parts.append(f"from {format_utc(first)} to {format_utc(last)}")
    return ", ".join(parts) + "."


def _calls_table(diagram: Diagram) -> list[str]:
    labels = {p.id: p.label for p in diagram.participants}
    trace_start = {s.trace_id: s.start_unix_nano for s in diagram.sections}
    lines = [
        "## Calls",
        "",
        "| # | time (UTC) | offset | from | to | call | duration | status | error | trace |",
        "|--:|---|--:|---|---|---|--:|---|---|---|",
    ]
    for index, message in enumerate(diagram.messages):
        if message.kind == "return":
            continue
        offset = message.start_unix_nano - trace_start.get(
            message.trace_id, message.start_unix_nano
        )
        lines.append(_row(index + 1, message, offset, labels))
    return [*lines, ""]


def _row(number: int, message: Message, offset: int, labels: dict[str, str]) -> str:
    cells = [
        str(number),
        format_utc(message.start_unix_nano).removesuffix(" UTC"),
        format_offset(offset),
        markdown_cell(labels.get(message.source, message.source)),
        markdown_cell(labels.get(message.target, message.target)),
        markdown_cell(message.label) + (" (async)" if message.kind == "async" else ""),
        format_duration(message.duration_ns),
        "✗ error" if message.is_error else "ok",
        markdown_cell(message.error or ""),
        f"`{message.trace_id[:8]}`",
    ]
    return "| " + " | ".join(cells) + " |"


def _notes(diagram: Diagram) -> list[str]:
    if not diagram.notes:
        return []
    lines = ["## Notes", ""]
    for note in diagram.notes:
        where = (
            f"before message {note.index + 1}"
            if note.index < len(diagram.messages)
            else "at the end"
        )
        lines.append(f"- {markdown_cell(note.text)} ({where})")
    return [*lines, ""]

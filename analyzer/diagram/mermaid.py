"""Mermaid ``sequenceDiagram`` text (Mermaid 11: participant types via ``@{ "type": ... }``).

Escaping: every label character outside a small safe set becomes a Mermaid entity code
``#<decimal>;`` (Mermaid turns it back into the character when drawing), so no label can
end its statement (``;``, newline), start a comment (``%%``), inject markup (``<``, ``>``)
or close a code fence (backtick). Participant ids become ``[A-Za-z0-9_]`` aliases that are
never a keyword such as ``end``; the real name is the quoted-free label after ``as``.
"""

from __future__ import annotations

from typing import Final

from analyzer.diagram.model import Block, Diagram, Message, Note, Participant
from analyzer.diagram.script import statements
from analyzer.diagram.text import shorten
from analyzer.escaping import MERMAID_KEYWORDS, mermaid_text, safe_aliases

__all__ = ["message_text", "render"]

_ERROR_LIMIT: Final = 80
_INDENT: Final = "    "

_SHAPES: Final = {"database": "database", "queue": "queue", "external": "boundary"}
_ARROWS: Final = {
    ("call", "ok"): "->>",
    ("call", "error"): "->>",
    ("return", "ok"): "-->>",
    ("return", "error"): "--x",
    ("async", "ok"): "-)",
    ("async", "error"): "-x",
    ("self", "ok"): "->>",
    ("self", "error"): "-x",
}


def message_text(message: Message) -> str:
    """What an arrow says; a failed answer carries its error."""
    if not message.error or message.kind == "call":
        return message.label
    error = shorten(message.error, _ERROR_LIMIT)
    if error.startswith(message.label):
        return "✗ " + error  # "503 Service Unavailable" already says "503"
    return f"{message.label} ✗ {error}"


def render(diagram: Diagram) -> str:
    aliases = safe_aliases([p.id for p in diagram.participants], MERMAID_KEYWORDS)
    lines = ["sequenceDiagram", _INDENT + "autonumber"]
    lines += [_INDENT + _participant(p, aliases[p.id]) for p in diagram.participants]
    everyone = [aliases[p.id] for p in diagram.participants]
    lines += statements(
        diagram,
        aliases,
        indent=lambda depth: _INDENT * (depth + 1),
        message=lambda message: _message(message, aliases),
        log_note=lambda alias, text: f"Note right of {alias}: {mermaid_text(text)}",
        note=lambda note: _note(note, aliases, everyone),
        open_block=_open,
        branch=lambda block: "and" if block.kind == "par" else "else",
    )
    return "\n".join(lines) + "\n"


def _participant(participant: Participant, alias: str) -> str:
    label = mermaid_text(participant.label, participant=True)
    if participant.implicit:
        return f"actor {alias} as {label}"
    shape = _SHAPES.get(participant.kind)
    if shape:
        return f'participant {alias}@{{ "type": "{shape}" }} as {label}'
    return f"participant {alias} as {label}"


def _message(message: Message, aliases: dict[str, str]) -> str:
    arrow = _ARROWS[(message.kind, message.status)]
    source, target = aliases[message.source], aliases[message.target]
    return f"{source}{arrow}{target}: {mermaid_text(message_text(message))}"


def _note(note: Note, aliases: dict[str, str], everyone: list[str]) -> str | None:
    over = [aliases[p] for p in note.participants if p in aliases] or everyone
    if not over:
        return None
    span = over[0] if len(over) == 1 else f"{over[0]},{over[-1]}"
    text = f"⋯ {note.text} ⋯" if note.kind == "gap" else note.text
    return f"Note over {span}: {mermaid_text(text)}"


def _open(block: Block) -> str:
    return f"{block.kind} {mermaid_text(block.label)}"

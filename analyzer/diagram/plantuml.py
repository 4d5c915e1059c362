"""PlantUML sequence diagram text (``@startuml`` ... ``@enduml``).

Escaping: every label character outside a small safe set is written as ``<U+XXXX>``,
which PlantUML draws as that character. Entities like ``&#36;`` are not used because
PlantUML feeds them through a regular-expression replacement that breaks on ``$`` and
``\\``. This keeps labels on their line and away from the preprocessor (``!include``,
``%getenv(...)`` expands anywhere in a line), Creole markup (``**``, ``//``, ``[[link]]``,
``<img:...>``) and directives (``@enduml``). Participant ids become ``[A-Za-z0-9_]``
aliases; the real name is the quoted display name.
"""

from __future__ import annotations

from typing import Final

from analyzer.diagram.mermaid import message_text
from analyzer.diagram.model import Block, Diagram, Message, Note, Participant
from analyzer.diagram.script import statements
from analyzer.escaping import PLANTUML_KEYWORDS, plantuml_text, safe_aliases

__all__ = ["render"]

_ERROR_COLOUR: Final = "#D93025"
_INDENT: Final = "  "

_SHAPES: Final = {
    "service": "participant",
    "database": "database",
    "queue": "queue",
    "external": "boundary",
}
_ARROWS: Final = {"call": "->", "return": "-->", "async": "->>", "self": "->"}
_ERROR_ARROWS: Final = {
    "call": f"-[{_ERROR_COLOUR}]>",
    "return": f"-[{_ERROR_COLOUR}]->",
    "async": f"-[{_ERROR_COLOUR}]>>",
    "self": f"-[{_ERROR_COLOUR}]>",
}
_EMPTY: Final = 'participant "no spans to draw" as nothing'
_HEADER: Final = (
    "@startuml",
    "autonumber",
    "skinparam shadowing false",
    "skinparam sequenceMessageAlign left",
    "skinparam ParticipantPadding 12",
)


def render(diagram: Diagram) -> str:
    aliases = safe_aliases([p.id for p in diagram.participants], PLANTUML_KEYWORDS)
    lines = list(_HEADER)
    lines += [_participant(p, aliases[p.id]) for p in diagram.participants]
    if not diagram.participants:
        lines.append(_EMPTY)  # PlantUML rejects a diagram with nothing in it
    everyone = [aliases[p.id] for p in diagram.participants]
    lines += statements(
        diagram,
        aliases,
        indent=lambda depth: _INDENT * depth,
        message=lambda message: _message(message, aliases),
        log_note=lambda alias, text: f"note right of {alias} : {plantuml_text(text)}",
        note=lambda note: _note(note, aliases, everyone),
        open_block=_open,
        branch=lambda block: "else",
    )
    lines.append("@enduml")
    return "\n".join(line for line in lines if line.strip()) + "\n"


def _participant(participant: Participant, alias: str) -> str:
    shape = "actor" if participant.implicit else _SHAPES[participant.kind]
    return f'{shape} "{plantuml_text(participant.label)}" as {alias}'


def _message(message: Message, aliases: dict[str, str]) -> str:
    arrows = _ERROR_ARROWS if message.is_error else _ARROWS
    text = message_text(message)
    source, target = aliases[message.source], aliases[message.target]
    return f"{source} {arrows[message.kind]} {target} : {plantuml_text(text)}"


def _note(note: Note, aliases: dict[str, str], everyone: list[str]) -> str:
    if note.kind == "gap":
        return f"== {plantuml_text('⋯ ' + note.text + ' ⋯')} =="
    over = [aliases[p] for p in note.participants if p in aliases] or everyone
    if not over:
        return f"== {plantuml_text(note.text)} =="
    span = over[0] if len(over) == 1 else f"{over[0]}, {over[-1]}"
    return f"note over {span} : {plantuml_text(note.text)}"


def _open(block: Block) -> str:
    return f"{block.kind} {plantuml_text(block.label)}"

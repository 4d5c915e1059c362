"""The diagram as one stream of drawing steps, shared by every renderer.

Blocks are index ranges over the messages; renderers want them as nested open/close
statements with notes and ``par`` branch separators in the right places. This module
turns the model into that stream once, so Mermaid, PlantUML and SVG agree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeAlias

from analyzer.diagram.logs import log_notes
from analyzer.diagram.model import Block, Diagram, Message, Note


@dataclass(frozen=True, slots=True)
class BlockStep:
    """Where a block opens (:class:`Open`), starts a new ``par`` branch (:class:`Branch`:
    ``and`` / ``else``) or closes (:class:`Close`)."""

    block: Block
    depth: int


class Open(BlockStep):
    __slots__ = ()


class Branch(BlockStep):
    __slots__ = ()


class Close(BlockStep):
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class NoteStep:
    note: Note
    depth: int


@dataclass(frozen=True, slots=True)
class MessageStep:
    index: int
    message: Message
    depth: int


Step: TypeAlias = Open | Branch | Close | NoteStep | MessageStep


def steps(diagram: Diagram) -> Iterator[Step]:
    """Blocks opened outermost first and closed innermost first; notes before their message."""
    blocks = sorted(
        (block for block in diagram.blocks if block.first <= block.last),
        key=lambda block: (block.first, -block.last),
    )
    notes_at: dict[int, list[Note]] = {}
    for note in diagram.notes:
        notes_at.setdefault(min(note.index, len(diagram.messages)), []).append(note)
    open_blocks: list[Block] = []
    for index, message in enumerate(diagram.messages):
        depth = len(open_blocks)
        for block in open_blocks:
            if index in block.branches and index != block.first:
                yield Branch(block, open_blocks.index(block))
        for note in notes_at.get(index, []):
            yield NoteStep(note, depth)
        for block in blocks:
            if block.first == index:
                yield Open(block, len(open_blocks))
                open_blocks.append(block)
        yield MessageStep(index, message, len(open_blocks))
        while open_blocks and open_blocks[-1].last <= index:
            closed = open_blocks.pop()
            yield Close(closed, len(open_blocks))
    while open_blocks:
        closed = open_blocks.pop()
        yield Close(closed, len(open_blocks))
    for note in notes_at.get(len(diagram.messages), []):
        yield NoteStep(note, 0)


def statements(
    diagram: Diagram,
    aliases: Mapping[str, str],
    indent: Callable[[int], str],
    message: Callable[[Message], str],
    log_note: Callable[[str, str], str],
    note: Callable[[Note], str | None],
    open_block: Callable[[Block], str],
    branch: Callable[[Block], str],
) -> list[str]:
    """The steps as a text language's statements (Mermaid, PlantUML), each indented by
    ``indent(depth)``: a message followed by the error and warning log records of its
    participants (``log_note(alias, text)``), notes (none where ``note`` gives none),
    blocks opened, branched, and closed with ``end``."""
    log_notes_at = log_notes(diagram)
    lines: list[str] = []
    for step in steps(diagram):
        prefix = indent(step.depth)
        if isinstance(step, MessageStep):
            lines.append(prefix + message(step.message))
            for participant, text in log_notes_at.get(step.index, ()):
                if participant in aliases:
                    lines.append(prefix + log_note(aliases[participant], text))
        elif isinstance(step, NoteStep):
            note_text = note(step.note)
            if note_text:
                lines.append(prefix + note_text)
        elif isinstance(step, Open):
            lines.append(prefix + open_block(step.block))
        elif isinstance(step, Branch):
            lines.append(prefix + branch(step.block))
        else:
            lines.append(prefix + "end")
    return lines

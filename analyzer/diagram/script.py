"""The diagram as one stream of drawing steps, shared by every renderer.

Blocks are index ranges over the messages; renderers want them as nested open/close
statements with notes and ``par`` branch separators in the right places. This module
turns the model into that stream once, so Mermaid, PlantUML and SVG agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeAlias

from analyzer.diagram.model import Block, Diagram, Message, Note


@dataclass(frozen=True, slots=True)
class Open:
    block: Block
    depth: int


@dataclass(frozen=True, slots=True)
class Branch:
    """A new branch of a ``par`` block starts here (``and`` / ``else``)."""

    block: Block
    depth: int


@dataclass(frozen=True, slots=True)
class Close:
    block: Block
    depth: int


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

"""The contract model: what the parser produces, ``contract init`` drafts, and the matcher reads.

A contract is a tree: a sequence of *items*, each a :class:`CMessage` (one arrow) or a
:class:`CBlock` (``loop``/``opt``/``alt``/``par`` holding one or more branches, each a
sequence of items). Returns are not part of the model: they are parsed and dropped, because
the matcher compares calls and async messages only (docs/contracts.md, "What is compared").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypeAlias

#: ``sync``: a call (``->>``/``->``); ``async``: ``-)``/``--)``; ``any``: ``-x``, a message
#: expected to fail, whose kind the contract leaves open.
MessageKind: TypeAlias = Literal["sync", "async", "any"]
Expectation: TypeAlias = Literal["ok", "error"]
BlockKind: TypeAlias = Literal["loop", "opt", "alt", "par"]
ParticipantShape: TypeAlias = Literal[
    "participant", "actor", "database", "queue", "boundary", "control", "entity", "collections"
]


@dataclass(frozen=True, slots=True)
class CParticipant:
    """A declared (or first-used) lifeline.

    ``alias`` is the identifier arrows use; ``label`` the text after ``as`` (``None``
    without one). The matcher pairs a contract participant with an observed one whose id
    or label equals the alias or the label (docs/contracts.md, "Participants").
    """

    alias: str
    label: str | None = None
    shape: ParticipantShape = "participant"
    line: int = 0
    declared: bool = True

    @property
    def name(self) -> str:
        """How reports name it: the ``as`` label when there is one, else the alias."""
        return self.label if self.label else self.alias


@dataclass(frozen=True, slots=True)
class CMessage:
    """One arrow of a contract: ``source`` and ``target`` are participant aliases."""

    source: str
    target: str
    label: str
    kind: MessageKind
    expect: Expectation
    line: int = 0
    column: int = 0
    #: Index of the message in the diagram it was drafted from (implicit contracts of
    #: ``seqtrace diff``), else ``None``.
    origin: int | None = None
    #: Position in :attr:`Contract.messages`, set by :func:`Contract.build`.
    index: int = -1


@dataclass(frozen=True, slots=True)
class CBlock:
    kind: BlockKind
    label: str
    branches: tuple[tuple[Item, ...], ...]
    line: int = 0


Item: TypeAlias = CMessage | CBlock


@dataclass(frozen=True, slots=True)
class Contract:
    """A parsed contract. ``messages`` lists every arrow in document order (``index``)."""

    name: str
    participants: tuple[CParticipant, ...]
    items: tuple[Item, ...]
    messages: tuple[CMessage, ...] = ()
    #: For each message index: the ids (positions in a pre-order walk) of the ``loop``
    #: blocks around it, outermost first.
    loops: tuple[tuple[int, ...], ...] = ()
    #: For each loop id: the message indices inside it.
    loop_members: tuple[frozenset[int], ...] = field(default=())
    #: alias -> display name, for reports
    names: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    #: ``%% runbook: URL-or-path``: what to do when the contract is violated
    runbook: str | None = field(default=None, compare=False)

    @staticmethod
    def build(
        name: str, participants: tuple[CParticipant, ...], items: tuple[Item, ...]
    ) -> Contract:
        """Number the messages and loops of ``items`` and return the finished contract."""
        messages: list[CMessage] = []
        loops: list[tuple[int, ...]] = []
        members: list[set[int]] = []

        def number(seq: tuple[Item, ...], around: tuple[int, ...]) -> tuple[Item, ...]:
            out: list[Item] = []
            for item in seq:
                if isinstance(item, CMessage):
                    numbered = _renumber(item, len(messages))
                    messages.append(numbered)
                    loops.append(around)
                    for loop_id in around:
                        members[loop_id].add(numbered.index)
                    out.append(numbered)
                    continue
                inner = around
                if item.kind == "loop":
                    members.append(set())
                    inner = (*around, len(members) - 1)
                branches = tuple(number(branch, inner) for branch in item.branches)
                out.append(CBlock(item.kind, item.label, branches, item.line))
            return tuple(out)

        numbered_items = number(items, ())
        return Contract(
            name=name,
            participants=participants,
            items=numbered_items,
            messages=tuple(messages),
            loops=tuple(loops),
            loop_members=tuple(frozenset(m) for m in members),
            names={p.alias: p.name for p in participants},
        )

    def participant(self, alias: str) -> CParticipant | None:
        for participant in self.participants:
            if participant.alias == alias:
                return participant
        return None

    def display_name(self, alias: str) -> str:
        return self.names.get(alias, alias)


def _renumber(message: CMessage, index: int) -> CMessage:
    return CMessage(
        message.source,
        message.target,
        message.label,
        message.kind,
        message.expect,
        message.line,
        message.column,
        message.origin,
        index,
    )

"""The diagram model: what the builder produces and every renderer draws.

One model, several renderers: the JSON renderer writes it out as SPEC's
``diagram --format json`` shape (plus added fields), and the Mermaid, PlantUML, SVG and
Markdown renderers only read it. Indices (``Block.first``, ``Note.index``...) point into
``Diagram.messages``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

ParticipantKind: TypeAlias = Literal["service", "database", "queue", "external"]
MessageKind: TypeAlias = Literal["call", "return", "async", "self"]
MessageStatus: TypeAlias = Literal["ok", "error"]
BlockKind: TypeAlias = Literal["loop", "par", "alt", "opt"]
NoteKind: TypeAlias = Literal["gap", "skew", "partial", "omitted", "variant"]


@dataclass(frozen=True, slots=True)
class Entity:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class Participant:
    """A lifeline. ``implicit`` marks the stand-in caller of root requests."""

    id: str
    label: str
    kind: ParticipantKind
    implicit: bool = False


@dataclass(frozen=True, slots=True)
class Link:
    """The span at the other end of a span link (the producer, for a consumer)."""

    trace_id: str
    span_id: str


@dataclass(frozen=True, slots=True)
class Message:
    """One arrow. ``source``/``target`` are the JSON's ``from``/``to`` participant ids.

    A call answered by a SERVER span in another service is one message whose ``span_id``
    is the CLIENT span and ``server_span_id`` the SERVER span. ``count`` > 1 marks
    ``count`` consecutive identical calls collapsed into this one, ``failed`` of them errors.
    """

    source: str
    target: str
    label: str
    kind: MessageKind
    status: MessageStatus
    error: str | None
    start_unix_nano: int
    duration_ns: int
    trace_id: str
    span_id: str
    server_span_id: str | None = None
    count: int = 1
    failed: int = 0
    link: Link | None = None
    attributes: tuple[tuple[str, str], ...] = ()
    #: Set on a message that stands for the same call in several traces (a busy entity's
    #: diagram folds repeated traces): up to 20 of those traces, failing first.
    trace_ids: tuple[str, ...] = ()

    @property
    def is_error(self) -> bool:
        return self.status == "error"


@dataclass(frozen=True, slots=True)
class Block:
    """A frame around messages ``first``..``last`` (inclusive).

    For ``par``, ``branches`` holds the index of each branch's first message.
    """

    kind: BlockKind
    label: str
    first: int
    last: int
    branches: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Note:
    """A remark drawn just before ``messages[index]`` (``len(messages)``: after the last).

    ``participants`` names the lifelines it is drawn over; empty means all of them.
    """

    index: int
    kind: NoteKind
    text: str
    participants: tuple[str, ...] = ()
    gap_ns: int | None = None


@dataclass(frozen=True, slots=True)
class Section:
    """The messages of one trace: ``first``..``last`` (``last < first`` when none drawn)."""

    trace_id: str
    first: int
    last: int
    start_unix_nano: int
    end_unix_nano: int


LogLevel: TypeAlias = Literal["error", "warn", "info"]


@dataclass(frozen=True, slots=True)
class LogMark:
    """A log record of a drawn span, drawn at ``messages[message_index]`` (None: at no
    message) on the lifeline of ``participant`` (its service; None when not drawn).
    ``attributes`` hold JSON-ready values (SPEC ``logs --json``)."""

    time_unix_nano: int
    severity: str
    severity_number: int
    body: str
    service: str
    trace_id: str | None
    span_id: str | None
    attributes: tuple[tuple[str, Any], ...]
    message_index: int | None
    participant: str | None
    level: LogLevel


@dataclass(frozen=True, slots=True)
class Diagram:
    entity: Entity | None
    traces: tuple[str, ...]
    participants: tuple[Participant, ...]
    messages: tuple[Message, ...]
    blocks: tuple[Block, ...] = ()
    notes: tuple[Note, ...] = ()
    sections: tuple[Section, ...] = ()
    omitted_messages: int = 0
    logs: tuple[LogMark, ...] = ()

    def participant(self, participant_id: str) -> Participant | None:
        for participant in self.participants:
            if participant.id == participant_id:
                return participant
        return None

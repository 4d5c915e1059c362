"""What an entity did, as the matcher sees it: the calls and async messages of its diagram.

Input is SPEC's ``diagram --format json`` shape (a dict), so this module depends on the
diagram's public contract only. Returns are dropped (they answer a call that is compared
already); a self-call counts as a call; a collapsed run (``count`` > 1, label ending in
a times sign and N) becomes ``count`` attempts, the first ``failed`` of them failed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from analyzer.contracts.text import TIMES, normalize_label

ObservedKind: TypeAlias = Literal["sync", "async"]


@dataclass(frozen=True, slots=True)
class Observed:
    """One observed call or async message. ``index``: its position in the diagram's
    ``messages`` (several tokens share it when a collapsed run is expanded)."""

    source: str
    target: str
    label: str
    kind: ObservedKind
    status: Literal["ok", "error"]
    error: str | None
    index: int
    trace_id: str
    span_id: str
    start_unix_nano: int = 0

    @property
    def signature(self) -> tuple[str, str, str, str]:
        return (self.source, self.target, self.label, self.kind)


@dataclass(frozen=True, slots=True)
class ObservedParticipant:
    id: str
    label: str
    kind: str


@dataclass(frozen=True, slots=True)
class ObservedSequence:
    """An entity's observed sequence: participants in diagram order and the tokens."""

    participants: tuple[ObservedParticipant, ...]
    tokens: tuple[Observed, ...]
    entity: tuple[str, str] | None = None
    traces: int = 0
    omitted_messages: int = 0


def message_label(message: Mapping[str, Any]) -> str:
    """A message's label without the collapse suffix (a times sign and the count)."""
    label = str(message.get("label") or "")
    count = int(message.get("count") or 1)
    suffix = f" {TIMES}{count}"
    if count > 1 and label.endswith(suffix):
        label = label[: -len(suffix)]
    return normalize_label(label)


def observed_sequence(diagram: Mapping[str, Any]) -> ObservedSequence:
    """The tokens of a diagram dict (SPEC shape; added fields used when present)."""
    participants = tuple(
        ObservedParticipant(
            str(p.get("id")), str(p.get("label") or p.get("id")), str(p.get("kind"))
        )
        for p in diagram.get("participants") or ()
    )
    tokens: list[Observed] = []
    for index, message in enumerate(diagram.get("messages") or ()):
        kind = message.get("kind")
        if kind == "return":
            continue
        tokens += _expand(message, index, "async" if kind == "async" else "sync")
    listed = {p.id for p in participants}
    for token in tokens:  # a message may name a participant the list lacks
        for pid in (token.source, token.target):
            if pid not in listed:
                listed.add(pid)
                participants += (ObservedParticipant(pid, pid, "service"),)
    entity = diagram.get("entity")
    key_value = (str(entity["key"]), str(entity["value"])) if entity else None
    return ObservedSequence(
        participants,
        tuple(tokens),
        key_value,
        len(diagram.get("traces") or ()),
        int(diagram.get("omitted_messages") or 0),
    )


def _expand(message: Mapping[str, Any], index: int, kind: ObservedKind) -> Sequence[Observed]:
    count = max(1, int(message.get("count") or 1))
    status = "error" if message.get("status") == "error" else "ok"
    failed = int(message.get("failed") or 0) if count > 1 else (1 if status == "error" else 0)
    if count > 1 and status == "error" and failed == 0:
        failed = count
    label = message_label(message)
    error = message.get("error")
    return [
        Observed(
            source=str(message.get("from")),
            target=str(message.get("to")),
            label=label,
            kind=kind,
            status="error" if attempt < failed else "ok",
            error=str(error) if error and attempt < failed else None,
            index=index,
            trace_id=str(message.get("trace_id") or ""),
            span_id=str(message.get("span_id") or ""),
            start_unix_nano=int(message.get("start_unix_nano") or 0),
        )
        for attempt in range(count)
    ]

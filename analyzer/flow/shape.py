"""A trace's *shape*: what stays the same when the same flow runs again.

The diagram builder arranges a trace into units (a call, what happens beneath it, its
return) and groups (``loop`` runs of the same call, ``par`` clusters of overlapping
calls). :func:`normalise` folds that arrangement into slots, one per message a variant
draws, and a hashable key:

- operations by route or template: labels have ids templated (:func:`template_label`);
- a run of the same call k times is one slot in a ``loop`` block, whatever k is;
- the branches of a ``par`` block are put in a canonical order, so they compare as a set;
- returns compare by kind and status only (their labels are status codes, not calls).

Two traces with equal keys draw the same slots in the same order, so their messages can
be counted slot by slot.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, TypeAlias

from analyzer.diagram.build import Group, Item, Unit
from analyzer.diagram.model import Block, Message

__all__ = ["Normalised", "ShapeKey", "Slot", "normalise", "template_label"]

ShapeKey: TypeAlias = tuple[object, ...]

_UUID: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_HEX: Final = re.compile(r"(?:0x)?[0-9a-fA-F]{8,}")
_NUMBER: Final = re.compile(r"[-+]?\d+(?:\.\d+)?")
_TOKEN: Final = re.compile(r"[A-Za-z0-9_.:~@+-]+")
_ID: Final = "{id}"


def _id_like(token: str) -> bool:
    """Numbers, UUIDs, long hex and tokens with several digits (``ORD-1002``); not ``v2``."""
    if _NUMBER.fullmatch(token) or _UUID.fullmatch(token):
        return True
    if _HEX.fullmatch(token) and any(c.isdigit() for c in token):
        return True
    return sum(c.isdigit() for c in token) >= 2


def template_label(label: str) -> str:
    """``GET /orders/1002`` -> ``GET /orders/{id}``: id-like tokens become ``{id}``.

    Tokens are the runs between ``/``, ``?``, ``=``, ``,`` and spaces; a label that is
    already a route (``{id}``, ``:id``) has none left to template."""
    return _TOKEN.sub(lambda m: _ID if _id_like(m.group(0)) else m.group(0), label)


@dataclass
class Slot:
    """One message a variant draws: ``template`` (label templated; an error when any of
    ``raw`` failed) and ``raw``, the trace's messages it stands for (k for a loop)."""

    template: Message
    raw: list[Message]
    key: tuple[str, str, str, str, str]


@dataclass
class Normalised:
    key: ShapeKey
    slots: list[Slot] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    #: (first, last) slots of every call with what it stands for: drawn as a ``loop``
    #: block when, in some trace of the variant, the call ran more than once.
    runs: list[tuple[int, int]] = field(default_factory=list)

    def extend(self, other: Normalised) -> None:
        offset = len(self.slots)
        self.slots += other.slots
        self.blocks += [
            dataclasses.replace(
                block,
                first=block.first + offset,
                last=block.last + offset,
                branches=tuple(b + offset for b in block.branches),
            )
            for block in other.blocks
        ]
        self.runs += [(first + offset, last + offset) for first, last in other.runs]


def normalise(items: Sequence[Item]) -> Normalised:
    """The slots and key of arranged items (one trace, or an entity's traces in turn)."""
    out = Normalised(())
    out.key = _items(items, out)
    return out


def _signature(unit: Unit) -> tuple[str, str, str, str]:
    head = unit.head
    return (head.source, head.target, template_label(head.label), head.kind)


def _items(items: Sequence[Item], out: Normalised) -> tuple[object, ...]:
    """Siblings in order; consecutive calls that are the same once templated (the builder
    compares raw labels: ``/stock/100``, ``/stock/101``) make one run."""
    keys: list[object] = []
    run: list[Unit] = []
    for item in items:
        units = (
            [item]
            if isinstance(item, Unit)
            else [u for u in item.items if isinstance(u, Unit)]
            if item.kind == "loop"
            else []
        )
        if units and run and _signature(units[0]) == _signature(run[0]):
            run += units
            continue
        if run:
            keys.append(_units(run, out))
            run = []
        if units:
            run = list(units)
        else:
            keys.append(_item(item, out))
    if run:
        keys.append(_units(run, out))
    return tuple(keys)


def _item(item: Item, out: Normalised) -> object:
    # A call once and the same call k times in a row have one key: runs of any length
    # are one variant.
    if isinstance(item, Unit):
        return _units([item], out)
    if item.kind == "loop":
        return _units([unit for unit in item.items if isinstance(unit, Unit)], out)
    return _par(item, out)


def _par(group: Group, out: Normalised) -> object:
    branches: list[tuple[str, Normalised]] = []
    for sub in group.items:
        part = Normalised(())
        part.key = (_item(sub, part),)
        branches.append((repr(part.key), part))
    # A set: the same calls in any order, and any number of identical concurrent calls,
    # are one shape. Identical branches become one, standing for all of their messages.
    distinct: dict[str, Normalised] = {}
    for text, part in branches:
        kept = distinct.setdefault(text, part)
        if kept is not part:
            for kept_slot, slot in zip(kept.slots, part.slots, strict=True):
                kept_slot.raw += slot.raw
    branches = sorted(distinct.items(), key=lambda branch: branch[0])
    if len(branches) == 1:
        # Every branch was the same call: a repetition, as a run in sequence is.
        only = branches[0][1]
        out.extend(only)
        return only.key[0]
    first = len(out.slots)
    starts: list[int] = []
    for _, part in branches:
        starts.append(len(out.slots))
        out.extend(part)
    out.blocks.append(Block("par", "par", first, len(out.slots) - 1, tuple(starts)))
    return ("par", tuple(part.key for _, part in branches))


def _units(units: list[Unit], out: Normalised) -> object:
    """One slot for the heads of ``units`` (a loop's run, or one unit), the body of the
    last of them (how the run ended), and one slot for their returns."""
    heads = [unit.head for unit in units]
    head_slot = _slot(heads, is_return=False)
    first = len(out.slots)
    out.slots.append(head_slot)
    last = units[-1]
    body_keys = _items(last.body, out)
    tails = [unit.tail for unit in units if unit.tail is not None]
    tail_key: object = None
    if tails:
        tail_slot = _slot(tails, is_return=True)
        out.slots.append(tail_slot)
        tail_key = tail_slot.key
    out.runs.append((first, len(out.slots) - 1))
    return (head_slot.key, body_keys, tail_key)


def _slot(messages: list[Message], is_return: bool) -> Slot:
    # A call is drawn as its first attempt; an answer as the last (how the run ended).
    first = messages[-1] if is_return else messages[0]
    failed = any(message.is_error for message in messages)
    label = first.label if is_return else template_label(first.label)
    error = next((m.error for m in messages if m.error), None)
    template = dataclasses.replace(
        first,
        label=label,
        status="error" if failed else "ok",
        error=error if failed else None,
    )
    key = (
        template.source,
        template.target,
        "" if is_return else label,
        template.kind,
        template.status,
    )
    return Slot(template, list(messages), key)

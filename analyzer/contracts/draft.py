"""``contract init``: an observed diagram (SPEC JSON) drafted as a contract, and contract text.

Cleaning up for people (docs/contracts.md, "contract init"):

* returns, timings, notes and trace boundaries are dropped: a contract compares calls and
  async messages only;
* a diagram ``loop`` (repeated or retried calls) becomes one ``loop`` drawing the call
  once. When the repetitions differ (a failed attempt that stopped early), each distinct
  repetition is a branch of an ``alt`` inside the loop. A failed attempt followed by a
  successful one is drawn succeeding (``->>``): the loop rule excuses it;
* a collapsed run (``count`` > 1) becomes a ``loop`` around the call;
* a diagram ``par`` becomes a ``par`` with the same branches (any order is accepted);
* a call that failed is drawn ``-x`` (the contract expects that failure);
* participants get ``[A-Za-z0-9_]`` aliases; ``as`` gives the observed id when it differs.

The output is deterministic: the same diagram always drafts the same text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from analyzer.contracts.model import (
    BlockKind,
    CBlock,
    CMessage,
    Contract,
    CParticipant,
    Item,
    MessageKind,
    ParticipantShape,
)
from analyzer.contracts.observed import message_label
from analyzer.contracts.text import contract_label
from analyzer.escaping import MERMAID_KEYWORDS, one_line, safe_aliases

__all__ = ["draft_contract", "write_contract"]

_SHAPES: Final[dict[str, ParticipantShape]] = {
    "database": "database",
    "queue": "queue",
    "external": "boundary",
}
_INDENT: Final = "    "
_ARROWS: Final = {("sync", "ok"): "->>", ("async", "ok"): "-)"}


def draft_contract(diagram: Mapping[str, Any], name: str = "contract.mmd") -> Contract:
    """The contract that the observed ``diagram`` (SPEC dict) conforms to, cleaned up."""
    messages: list[Mapping[str, Any]] = list(diagram.get("messages") or ())
    blocks = [
        _Block(
            str(b.get("kind")),
            int(b.get("first", 0)),
            int(b.get("last", -1)),
            tuple(int(i) for i in b.get("branches") or ()),
        )
        for b in diagram.get("blocks") or ()
        if int(b.get("first", 0)) <= int(b.get("last", -1)) < len(messages)
    ]
    drafter = _Drafter(messages, blocks)
    items = tuple(drafter.convert(0, len(messages) - 1, blocks))
    used: dict[str, None] = {}
    for message in _walk(items):
        used.setdefault(message.source)
        used.setdefault(message.target)
    observed = {str(p.get("id")): p for p in diagram.get("participants") or ()}
    ids = [pid for pid in observed if pid in used] + [pid for pid in used if pid not in observed]
    aliases = safe_aliases(ids, MERMAID_KEYWORDS)
    participants = tuple(_participant(pid, aliases[pid], observed.get(pid)) for pid in ids)
    renamed = _rename(items, aliases)
    return Contract.build(name, participants, renamed)


def write_contract(contract: Contract, comments: Sequence[str] = ()) -> str:
    """The contract as a Mermaid ``sequenceDiagram`` in the subset the parser reads."""
    lines = [f"%% {one_line(comment)}" for comment in comments]
    lines.append("sequenceDiagram")
    for participant in contract.participants:
        lines.append(_INDENT + _declaration(participant))
    _write_items(contract.items, 1, lines)
    return "\n".join(lines) + "\n"


# --- drafting ---------------------------------------------------------------------------


class _Block:
    __slots__ = ("branches", "first", "kind", "last")

    def __init__(self, kind: str, first: int, last: int, branches: tuple[int, ...]) -> None:
        self.kind = kind
        self.first = first
        self.last = last
        self.branches = branches


class _Drafter:
    def __init__(self, messages: list[Mapping[str, Any]], blocks: list[_Block]) -> None:
        self.messages = messages
        self.depth = _depths(messages)

    def convert(self, lo: int, hi: int, blocks: list[_Block]) -> list[Item]:
        items: list[Item] = []
        index = lo
        while index <= hi:
            starting = [b for b in blocks if b.first == index and b.last <= hi]
            if starting:
                block = max(starting, key=lambda b: (b.last, b.kind != "loop"))
                inner = [
                    b
                    for b in blocks
                    if b is not block and block.first <= b.first and b.last <= block.last
                ]
                items += self._block(block, inner)
                index = block.last + 1
                continue
            message = self.messages[index]
            if message.get("kind") != "return":
                items.append(self._message(message, index))
            index += 1
        return items

    def _message(self, message: Mapping[str, Any], index: int) -> Item:
        count = max(1, int(message.get("count") or 1))
        failed = int(message.get("failed") or 0)
        error = message.get("status") == "error"
        if count > 1:
            error = error and (failed == 0 or failed >= count)  # the run ended in success?
        kind: MessageKind = "async" if message.get("kind") == "async" else "sync"
        cmessage = CMessage(
            str(message.get("from")),
            str(message.get("to")),
            message_label(message),
            "any" if error else kind,
            "error" if error else "ok",
            origin=index,
        )
        if count > 1:
            return CBlock("loop", "repeat", ((cmessage,),))
        return cmessage

    def _block(self, block: _Block, inner: list[_Block]) -> list[Item]:
        if block.kind == "par":
            starts = self._par_branches(block)
            ends = [*(s - 1 for s in starts[1:]), block.last]
            branches = tuple(
                tuple(self.convert(s, e, [b for b in inner if s <= b.first and b.last <= e]))
                for s, e in zip(starts, ends, strict=True)
            )
            branches = tuple(b for b in branches if b)
            if len(branches) <= 1:
                return list(branches[0]) if branches else []
            return [CBlock("par", "concurrent", branches)]
        if block.kind == "loop":
            return [self._loop(block, inner)]
        branch = tuple(self.convert(block.first, block.last, inner))
        kind: BlockKind = "alt" if block.kind == "alt" else "opt"
        return [CBlock(kind, "", (branch,))]

    def _par_branches(self, block: _Block) -> list[int]:
        if block.branches:
            starts = sorted({b for b in block.branches if block.first <= b <= block.last})
            if starts and starts[0] == block.first:
                return starts
        depth = self.depth[block.first]
        return [
            i
            for i in range(block.first, block.last + 1)
            if self.depth[i] == depth and self.messages[i].get("kind") != "return"
        ] or [block.first]

    def _loop(self, block: _Block, inner: list[_Block]) -> Item:
        first = self.messages[block.first]
        signature = _signature(first)
        depth = self.depth[block.first]
        starts = [
            i
            for i in range(block.first, block.last + 1)
            if self.depth[i] == depth
            and _signature(self.messages[i]) == signature
            and self.messages[i].get("kind") != "return"
        ]
        ends = [*(s - 1 for s in starts[1:]), block.last]
        repetitions = [
            self.convert(s, e, [b for b in inner if s <= b.first and b.last <= e])
            for s, e in zip(starts, ends, strict=True)
        ]
        retried = any(_failed_somewhere(r) for r in repetitions)
        repetitions = _excuse_retries(repetitions)
        variants: list[tuple[Item, ...]] = []
        seen: set[tuple[object, ...]] = set()
        for repetition in repetitions:
            key = _shape(tuple(repetition))
            if key not in seen:
                seen.add(key)
                variants.append(tuple(repetition))
        label = "retry" if retried else "repeat"
        if len(variants) == 1:
            body = variants[0]
            if len(body) == 1 and isinstance(body[0], CBlock) and body[0].kind == "loop":
                return body[0]  # a collapsed run already is a loop
            return CBlock("loop", label, (body,))
        return CBlock("loop", label, ((CBlock("alt", "attempt", tuple(variants)),),))


def _depths(messages: list[Mapping[str, Any]]) -> list[int]:
    """Call nesting per message: a call opens a level, its return closes it."""
    depths: list[int] = []
    depth = 0
    for message in messages:
        kind = message.get("kind")
        if kind == "return":
            depth = max(0, depth - 1)
            depths.append(depth)
            continue
        depths.append(depth)
        if kind == "call":
            depth += 1
    return depths


def _signature(message: Mapping[str, Any]) -> tuple[str, str, str, str]:
    return (
        str(message.get("from")),
        str(message.get("to")),
        message_label(message),
        str(message.get("kind")),
    )


def _walk(items: Sequence[Item]) -> list[CMessage]:
    out: list[CMessage] = []
    for item in items:
        if isinstance(item, CMessage):
            out.append(item)
        else:
            for branch in item.branches:
                out += _walk(branch)
    return out


def _failed_somewhere(items: Sequence[Item]) -> bool:
    return any(m.expect == "error" for m in _walk(items))


def _excuse_retries(repetitions: list[list[Item]]) -> list[list[Item]]:
    """A failed call followed, in a later repetition, by a success of the same call is drawn
    succeeding: the loop rule excuses the failed attempt."""
    later_ok: list[set[tuple[str, str, str]]] = []
    seen: set[tuple[str, str, str]] = set()
    for repetition in reversed(repetitions):
        later_ok.append(set(seen))
        seen |= {(m.source, m.target, m.label) for m in _walk(repetition) if m.expect == "ok"}
    later_ok.reverse()
    return [_map_messages(rep, _excuser(ok)) for rep, ok in zip(repetitions, later_ok, strict=True)]


def _excuser(ok: set[tuple[str, str, str]]) -> Callable[[CMessage], CMessage]:
    def excuse(message: CMessage) -> CMessage:
        key = (message.source, message.target, message.label)
        return _succeeding(message) if key in ok else message

    return excuse


def _succeeding(message: CMessage) -> CMessage:
    if message.expect == "ok":
        return message
    kind = "sync" if message.kind == "any" else message.kind
    return CMessage(
        message.source, message.target, message.label, kind, "ok", origin=message.origin
    )


def _map_messages(items: Sequence[Item], fn: Callable[[CMessage], CMessage]) -> list[Item]:
    out: list[Item] = []
    for item in items:
        if isinstance(item, CMessage):
            out.append(fn(item))
        else:
            branches = tuple(tuple(_map_messages(b, fn)) for b in item.branches)
            out.append(CBlock(item.kind, item.label, branches, item.line))
    return out


def _shape(items: tuple[Item, ...]) -> tuple[object, ...]:
    out: list[object] = []
    for item in items:
        if isinstance(item, CMessage):
            out.append((item.source, item.target, item.label, item.kind, item.expect))
        else:
            out.append((item.kind, tuple(_shape(b) for b in item.branches)))
    return tuple(out)


def _rename(items: tuple[Item, ...], aliases: dict[str, str]) -> tuple[Item, ...]:
    def rename(message: CMessage) -> CMessage:
        return CMessage(
            aliases[message.source],
            aliases[message.target],
            message.label,
            message.kind,
            message.expect,
            origin=message.origin,
        )

    return tuple(_map_messages(items, rename))


def _participant(pid: str, alias: str, observed: Mapping[str, Any] | None) -> CParticipant:
    kind = str(observed.get("kind")) if observed else "service"
    implicit = bool(observed.get("implicit")) if observed else False
    shape: ParticipantShape = "actor" if implicit else _SHAPES.get(kind, "participant")
    return CParticipant(alias, pid if pid != alias else None, shape)


# --- writing ----------------------------------------------------------------------------


def _declaration(participant: CParticipant) -> str:
    label = f" as {_participant_label(participant.label)}" if participant.label else ""
    if participant.shape == "actor":
        return f"actor {participant.alias}{label}"
    if participant.shape == "participant":
        return f"participant {participant.alias}{label}"
    return f'participant {participant.alias}@{{ "type": "{participant.shape}" }}{label}'


def _participant_label(text: str) -> str:
    return "".join(f"#{ord(c)};" if c in ",:@" else c for c in contract_label(text))


def _write_items(items: tuple[Item, ...], depth: int, lines: list[str]) -> None:
    indent = _INDENT * depth
    for item in items:
        if isinstance(item, CMessage):
            arrow = "-x" if item.expect == "error" else _ARROWS.get((item.kind, "ok"), "->>")
            lines.append(f"{indent}{item.source}{arrow}{item.target}: {contract_label(item.label)}")
            continue
        separator = "else" if item.kind == "alt" else "and"
        label = f" {contract_label(item.label)}" if item.label else ""
        lines.append(f"{indent}{item.kind}{label}")
        for number, branch in enumerate(item.branches):
            if number:
                lines.append(f"{indent}{separator}")
            _write_items(branch, depth + 1, lines)
        lines.append(f"{indent}end")

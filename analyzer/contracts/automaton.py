"""A contract compiled into an automaton over message tokens (docs/contracts.md, "Matching").

Construction (Thompson's, then ε-elimination):

* a message is a *token state*: entering it consumes one observed message;
* a sequence chains its items; ``opt`` adds a bypass; ``alt`` forks and joins;
* ``loop`` adds an edge from its end back to its start (one or more repetitions);
* ``par`` with branches B1..Bk accepts the branches in any order, each branch whole: a hub
  state for every subset of finished branches, and from each hub a fresh copy of every
  unfinished branch leading to the hub with that branch added (k·2^(k-1) copies, k ≤ 6).

The ε-states are then removed: ``follow[s]`` lists the token states reachable from state
``s`` through ε-states only, and ``accepting[s]`` says whether the end is. State 0 is the
start. Several token states may stand for one contract message (copies inside ``par``).
"""

from __future__ import annotations

from dataclasses import dataclass

from analyzer.contracts.model import CBlock, CMessage, Contract, Item

__all__ = ["Automaton", "compile_contract"]


@dataclass(frozen=True, slots=True)
class Automaton:
    contract: Contract
    #: contract message index of each state (``-1`` for the start state 0)
    message_of: tuple[int, ...]
    follow: tuple[tuple[int, ...], ...]
    pred: tuple[tuple[int, ...], ...]
    accepting: tuple[bool, ...]
    #: (source alias, target alias, label) -> token states carrying that message
    by_signature: dict[tuple[str, str, str], tuple[int, ...]]

    @property
    def size(self) -> int:
        return len(self.message_of)


class _Graph:
    def __init__(self) -> None:
        self.token: list[int] = []
        self.edges: list[list[int]] = []

    def node(self, token: int = -1) -> int:
        self.token.append(token)
        self.edges.append([])
        return len(self.token) - 1

    def edge(self, a: int, b: int) -> None:
        self.edges[a].append(b)

    def sequence(self, items: tuple[Item, ...]) -> tuple[int, int]:
        entry = self.node()
        current = entry
        for item in items:
            first, last = self.item(item)
            self.edge(current, first)
            current = last
        return entry, current

    def item(self, item: Item) -> tuple[int, int]:
        if isinstance(item, CMessage):
            state = self.node(item.index)
            return state, state
        return self.block(item)

    def block(self, block: CBlock) -> tuple[int, int]:
        if block.kind == "par":
            return self.par(block.branches)
        entry, exit_ = self.node(), self.node()
        if block.kind == "loop":
            first, last = self.sequence(block.branches[0])
            self.edge(entry, first)
            self.edge(last, exit_)
            self.edge(exit_, entry)
            return entry, exit_
        if block.kind == "opt":
            self.edge(entry, exit_)
        for branch in block.branches:  # opt: its one branch; alt: every branch
            first, last = self.sequence(branch)
            self.edge(entry, first)
            self.edge(last, exit_)
        return entry, exit_

    def par(self, branches: tuple[tuple[Item, ...], ...]) -> tuple[int, int]:
        count = len(branches)
        hubs = [self.node() for _ in range(1 << count)]
        for done in range(1 << count):
            for index, branch in enumerate(branches):
                if done & (1 << index):
                    continue
                first, last = self.sequence(branch)  # a fresh copy per subset
                self.edge(hubs[done], first)
                self.edge(last, hubs[done | (1 << index)])
        return hubs[0], hubs[-1]


def compile_contract(contract: Contract) -> Automaton:
    graph = _Graph()
    start, final = graph.sequence(contract.items)
    states = [start] + [node for node, token in enumerate(graph.token) if token >= 0]
    number = {node: state for state, node in enumerate(states)}
    follow: list[tuple[int, ...]] = []
    accepting: list[bool] = []
    for node in states:
        reached: list[int] = []
        accepts = node == final
        seen: set[int] = set()
        stack = list(reversed(graph.edges[node]))
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            if graph.token[current] >= 0:
                reached.append(number[current])
                continue
            if current == final:
                accepts = True
            stack.extend(reversed(graph.edges[current]))
        follow.append(tuple(reached))
        accepting.append(accepts)
    pred: list[list[int]] = [[] for _ in states]
    for state, targets in enumerate(follow):
        for target in targets:
            pred[target].append(state)
    message_of = tuple(graph.token[node] for node in states)
    by_signature: dict[tuple[str, str, str], list[int]] = {}
    for state in range(1, len(states)):
        message = contract.messages[message_of[state]]
        key = (message.source, message.target, message.label)
        by_signature.setdefault(key, []).append(state)
    return Automaton(
        contract=contract,
        message_of=(-1, *message_of[1:]),
        follow=tuple(follow),
        pred=tuple(tuple(p) for p in pred),
        accepting=tuple(accepting),
        by_signature={key: tuple(value) for key, value in by_signature.items()},
    )

"""The one matching algorithm behind ``contract check``, ``diff`` and the UI (docs/contracts.md).

1. Participants: each contract participant is paired with the observed participant whose id
   or label equals its ``as`` label or alias (exact first, then ignoring case and
   punctuation). Observed participants left over can match nothing.
2. Tokens: the observed calls and async messages become (from, to, label, kind, status).
3. Alignment: a minimum-cost edit alignment of the tokens against the contract's automaton
   (:mod:`analyzer.contracts.automaton`): a dynamic programme over (observed position by
   automaton state). Moves: *match* a token to a state carrying the same (from, to, label)
   (cost 0; +1 if the kind differs, +1 if the status differs, except a failed attempt
   inside a ``loop``, see 5), *unexpected* (skip a token, cost 1), *missing* (skip a
   contract message, cost 1). On equal cost an observed message is rather unexpected than
   matched later (the contract matches as early as it can, extras are reported after it),
   and a contract message is missing only when that is strictly cheaper.
4. Order: a missing message and an unexpected one with the same (from, to, label) are one
   ``order`` violation: it happened, but not where the contract draws it.
5. Status: a call that failed where the contract draws it succeeding is a ``status``
   violation, unless it sits in a ``loop`` and a later attempt of the same call in that
   loop (before the alignment leaves the loop) succeeded. A ``-x`` arrow that succeeded
   is a ``status`` violation too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from analyzer.contracts.automaton import Automaton, compile_contract
from analyzer.contracts.model import CMessage, Contract, CParticipant
from analyzer.contracts.observed import Observed, ObservedParticipant, ObservedSequence
from analyzer.escaping import loose_name, one_line, shorten

__all__ = [
    "Alignment",
    "Matcher",
    "Problem",
    "Step",
    "StepStatus",
    "Violation",
    "expected_name",
    "observed_name",
]

StepStatus: TypeAlias = Literal["same", "missing", "unexpected", "changed"]
Problem: TypeAlias = Literal["missing", "unexpected", "order", "kind", "status"]

_INF = 1 << 40
_MATCH, _UNEXPECTED, _MISSING, _ORIGIN = 1, 2, 3, 0
_UNMATCHED = "\x00"  # prefix of observed participants no contract participant stands for
_ERROR_LIMIT = 120

# An abstract token: (from, to, label, kind, status) with participants mapped to contract
# aliases. Alignments are memoised on tuples of these: most entities look alike.
_Token: TypeAlias = tuple[str, str, str, str, str]
# A path event: (move, state, token position or -1)
_Event: TypeAlias = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class Step:
    """One aligned step: a contract message, an observed message, or both."""

    status: StepStatus
    expected: CMessage | None
    observed: Observed | None
    problems: tuple[Problem, ...] = ()
    #: for the two halves of an ``order`` violation: the other half's step index
    partner: int | None = None
    #: a failed attempt inside a loop that a later attempt made good
    excused: bool = False


@dataclass(frozen=True, slots=True)
class Violation:
    kind: Problem
    expected: str | None
    observed: str | None
    message: str
    step: int
    line: int | None = None
    observed_index: int | None = None
    trace_id: str | None = None
    span_id: str | None = None


@dataclass(frozen=True, slots=True)
class Alignment:
    contract: Contract
    sequence: ObservedSequence
    steps: tuple[Step, ...]
    violations: tuple[Violation, ...]
    cost: int

    @property
    def conforming(self) -> bool:
        return not self.violations


def expected_name(contract: Contract, message: CMessage) -> str:
    """``FROM->TO: label`` (``->>`` for async) with the contract's participant names."""
    arrow = "->>" if message.kind == "async" else "->"
    source, target = contract.display_name(message.source), contract.display_name(message.target)
    return f"{source}{arrow}{target}: {message.label}"


def observed_name(observed: Observed) -> str:
    arrow = "->>" if observed.kind == "async" else "->"
    return f"{observed.source}{arrow}{observed.target}: {observed.label}"


class Matcher:
    """A compiled contract; :meth:`align` matches observed sequences against it."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self.automaton: Automaton = compile_contract(contract)
        self._paths: dict[tuple[_Token, ...], tuple[int, tuple[_Event, ...]]] = {}
        self._mappings: dict[tuple[ObservedParticipant, ...], dict[str, str]] = {}
        self._in_loop = tuple(bool(loops) for loops in contract.loops)

    # --- participants -------------------------------------------------------------------

    def mapping(self, participants: tuple[ObservedParticipant, ...]) -> dict[str, str]:
        """Observed participant id -> contract alias (or a never-matching placeholder)."""
        cached = self._mappings.get(participants)
        if cached is not None:
            return cached
        result = _pair_participants(self.contract.participants, participants)
        if len(self._mappings) < 4096:
            self._mappings[participants] = result
        return result

    # --- alignment ----------------------------------------------------------------------

    def align(self, sequence: ObservedSequence) -> Alignment:
        mapping = self.mapping(sequence.participants)
        tokens = tuple(
            (
                mapping.get(t.source, _UNMATCHED + t.source),
                mapping.get(t.target, _UNMATCHED + t.target),
                t.label,
                t.kind,
                t.status,
            )
            for t in sequence.tokens
        )
        found = self._paths.get(tokens)
        if found is None:
            found = self._search(tokens)
            if len(self._paths) < 65_536:
                self._paths[tokens] = found
        cost, path = found
        steps = self._steps(path, sequence.tokens, mapping)
        return Alignment(self.contract, sequence, steps, self._violations(steps), cost)

    def _cost(self, message: CMessage, token: _Token) -> int:
        cost = 0
        if message.kind != "any" and message.kind != token[3]:
            cost += 1
        if message.expect == "error":
            cost += token[4] == "ok"
        elif token[4] == "error" and not self._in_loop[message.index]:
            cost += 1
        return cost

    def _search(self, tokens: tuple[_Token, ...]) -> tuple[int, tuple[_Event, ...]]:
        exact = self._exact(tokens)
        if exact is not None:
            return 0, exact
        automaton = self.automaton
        size = automaton.size
        pred = automaton.pred
        messages = self.contract.messages
        message_of = automaton.message_of
        cost = [_INF] * size
        cost[0] = 0
        moves = [_ORIGIN] * size
        froms = [-1] * size
        self._close(cost, moves, froms)
        columns = [(moves, froms)]
        for token in tokens:
            new_cost = [value + 1 for value in cost]
            moves = [_UNEXPECTED] * size
            froms = list(range(size))
            for state in automaton.by_signature.get((token[0], token[1], token[2]), ()):
                step_cost = self._cost(messages[message_of[state]], token)
                for previous in pred[state]:
                    value = cost[previous] + step_cost
                    if value < new_cost[state]:  # ties keep "unexpected": match early
                        new_cost[state] = value
                        moves[state] = _MATCH
                        froms[state] = previous
            self._close(new_cost, moves, froms)
            cost = new_cost
            columns.append((moves, froms))
        best_state, best = 0, _INF
        for state in range(size):
            if automaton.accepting[state] and cost[state] < best:
                best_state, best = state, cost[state]
        events: list[_Event] = []
        position, state = len(tokens), best_state
        while True:
            column_moves, column_froms = columns[position]
            move, previous = column_moves[state], column_froms[state]
            if move == _ORIGIN:
                break
            if move == _MATCH:
                events.append((_MATCH, state, position - 1))
                state, position = previous, position - 1
            elif move == _UNEXPECTED:
                events.append((_UNEXPECTED, state, position - 1))
                position -= 1
            else:
                events.append((_MISSING, state, -1))
                state = previous
        events.reverse()
        return best, tuple(events)

    def _exact(self, tokens: tuple[_Token, ...]) -> tuple[_Event, ...] | None:
        """The zero-cost path when the tokens follow the automaton exactly (the common case
        for conforming entities), by simulating it on state sets; else None."""
        automaton = self.automaton
        messages, message_of, pred = self.contract.messages, automaton.message_of, automaton.pred
        current: set[int] = {0}
        history: list[set[int]] = [current]
        for token in tokens:
            reached: set[int] = set()
            for state in automaton.by_signature.get((token[0], token[1], token[2]), ()):
                if self._cost(messages[message_of[state]], token):
                    continue
                if any(previous in current for previous in pred[state]):
                    reached.add(state)
            if not reached:
                return None
            current = reached
            history.append(current)
        finals = sorted(state for state in current if automaton.accepting[state])
        if not finals:
            return None
        events: list[_Event] = []
        state = finals[0]
        for position in range(len(tokens), 0, -1):
            events.append((_MATCH, state, position - 1))
            before = history[position - 1]
            state = min(previous for previous in pred[state] if previous in before)
        events.reverse()
        return tuple(events)

    def _close(self, cost: list[int], moves: list[int], froms: list[int]) -> None:
        """Relax *missing* moves (cost 1 each) within one column until nothing improves.
        States are numbered in document order, so one sweep suffices unless a loop's back
        edge improved something."""
        follow = self.automaton.follow
        again = True
        while again:
            again = False
            for state, targets in enumerate(follow):
                value = cost[state] + 1
                if value >= _INF:
                    continue
                for target in targets:
                    if value < cost[target]:
                        cost[target] = value
                        moves[target] = _MISSING
                        froms[target] = state
                        if target <= state:
                            again = True

    # --- classification -----------------------------------------------------------------

    def _steps(
        self, path: tuple[_Event, ...], observed: tuple[Observed, ...], mapping: dict[str, str]
    ) -> tuple[Step, ...]:
        messages = self.contract.messages
        message_of = self.automaton.message_of
        raw: list[tuple[int, CMessage | None, Observed | None]] = []
        for move, state, position in path:
            message = messages[message_of[state]] if move != _UNEXPECTED else None
            token = observed[position] if position >= 0 else None
            raw.append((move, message, token))
        steps: list[Step] = []
        for index, (move, message, token) in enumerate(raw):
            if move == _MISSING:
                steps.append(Step("missing", message, None, ("missing",)))
            elif move == _UNEXPECTED:
                steps.append(Step("unexpected", None, token, ("unexpected",)))
            else:
                assert message is not None and token is not None
                problems: list[Problem] = []
                excused = False
                if message.kind != "any" and message.kind != token.kind:
                    problems.append("kind")
                if message.expect == "error" and token.status == "ok":
                    problems.append("status")
                elif message.expect == "ok" and token.status == "error":
                    excused = self._excused(raw, index)
                    if not excused:
                        problems.append("status")
                status: StepStatus = "changed" if problems else "same"
                steps.append(Step(status, message, token, tuple(problems), None, excused))
        return _pair_moves(steps, mapping)

    def _excused(self, raw: list[tuple[int, CMessage | None, Observed | None]], index: int) -> bool:
        """A failed attempt is excused by a later successful attempt of the same call inside
        the innermost loop around its contract message, before the path leaves that loop."""
        message, token = raw[index][1], raw[index][2]
        assert message is not None and token is not None
        loops = self.contract.loops[message.index]
        if not loops:
            return False
        members = self.contract.loop_members[loops[-1]]
        for move, later, attempt in raw[index + 1 :]:
            if move == _UNEXPECTED:
                continue
            assert later is not None
            if later.index not in members:
                return False
            if (
                move == _MATCH
                and attempt is not None
                and attempt.status == "ok"
                and (later.source, later.target, later.label)
                == (message.source, message.target, message.label)
            ):
                return True
        return False

    def _violations(self, steps: tuple[Step, ...]) -> tuple[Violation, ...]:
        out: list[Violation] = []
        for index, step in enumerate(steps):
            for problem in step.problems:
                violation = self._violation(steps, index, step, problem)
                if violation is not None:
                    out.append(violation)
        return tuple(out)

    def _violation(
        self, steps: tuple[Step, ...], index: int, step: Step, problem: Problem
    ) -> Violation | None:
        contract = self.contract
        expected, observed = step.expected, step.observed
        if problem == "order":
            if step.status == "missing":
                return None  # reported once, at the observed half
            assert step.partner is not None and observed is not None
            expected = steps[step.partner].expected
            assert expected is not None
            where = _neighbour(contract, steps, step.partner)
            text = (
                f"{observed_name(observed)} happened out of order: {_source(expected)} "
                f"draws it {where}"
            )
        elif problem == "missing":
            assert expected is not None
            where = _neighbour(contract, steps, index)
            text = (
                f"{expected_name(contract, expected)} did not happen: {_source(expected)} "
                f"draws it {where}"
            )
        elif problem == "unexpected":
            assert observed is not None
            failed = f" (it failed: {_error(observed)})" if observed.status == "error" else ""
            hint = ""
            if observed.status == "error" and _repeats_neighbour(steps, index):
                hint = "; a retry? draw the call inside a loop block to allow repetitions"
            text = (
                f"{observed_name(observed)} happened{failed} but the contract does not "
                f"draw it here{hint}"
            )
        elif problem == "kind":
            assert expected is not None and observed is not None
            want = "an async message" if expected.kind == "async" else "a synchronous call"
            got = "an async message" if observed.kind == "async" else "a synchronous call"
            text = f"{observed_name(observed)} was {got}; {_source(expected)} draws {want}"
        else:  # status
            assert expected is not None and observed is not None
            if expected.expect == "error":
                text = (
                    f"{observed_name(observed)} succeeded; {_source(expected)} draws it "
                    "failing (-x)"
                )
            else:
                later = (
                    " and no later attempt in its loop succeeded"
                    if self._in_loop[expected.index]
                    else ""
                )
                text = (
                    f"{observed_name(observed)} failed ({_error(observed)}){later}; "
                    f"{_source(expected)} draws it succeeding"
                )
        return Violation(
            kind=problem,
            expected=expected_name(contract, expected) if expected else None,
            observed=observed_name(observed) if observed else None,
            message=text,
            step=index,
            line=expected.line if expected else None,
            observed_index=observed.index if observed else None,
            trace_id=observed.trace_id if observed else None,
            span_id=observed.span_id if observed else None,
        )


def _pair_moves(steps: list[Step], mapping: dict[str, str]) -> tuple[Step, ...]:
    """A missing and an unexpected step of the same (from, to, label) are one move."""
    unexpected: dict[tuple[str, str, str], list[int]] = {}
    for index, step in enumerate(steps):
        if step.status == "unexpected" and step.observed is not None:
            o = step.observed
            key = (
                mapping.get(o.source, _UNMATCHED + o.source),
                mapping.get(o.target, _UNMATCHED + o.target),
                o.label,
            )
            unexpected.setdefault(key, []).append(index)
    if not unexpected:
        return tuple(steps)
    paired = list(steps)
    for index, step in enumerate(steps):
        message = step.expected
        if step.status != "missing" or message is None:
            continue
        candidates = unexpected.get((message.source, message.target, message.label), [])
        if not candidates:
            continue
        other = min(candidates, key=lambda i: (abs(i - index), i))
        candidates.remove(other)
        paired[index] = Step("missing", message, None, ("order",), other)
        paired[other] = Step("unexpected", None, steps[other].observed, ("order",), index)
    return tuple(paired)


def _source(message: CMessage) -> str:
    """Where a contract message comes from: a file's line, or the base entity's diagram."""
    if message.line:
        return f"the contract (line {message.line})"
    if message.origin is not None:
        return f"the first sequence (message {message.origin + 1})"
    return "the contract"


def _neighbour(contract: Contract, steps: tuple[Step, ...], index: int) -> str:
    """Where a contract message sits: after the nearest earlier contract message."""
    for earlier in range(index - 1, -1, -1):
        message = steps[earlier].expected
        if message is not None:
            return f"after {expected_name(contract, message)}"
    return "first"


def _repeats_neighbour(steps: tuple[Step, ...], index: int) -> bool:
    observed = steps[index].observed
    assert observed is not None
    for other in (index - 1, index + 1):
        if 0 <= other < len(steps):
            neighbour = steps[other].observed
            if neighbour is not None and neighbour.signature == observed.signature:
                return True
    return False


def _error(observed: Observed) -> str:
    return shorten(one_line(observed.error or "error"), _ERROR_LIMIT)


def _pair_participants(
    contract: tuple[CParticipant, ...], observed: tuple[ObservedParticipant, ...]
) -> dict[str, str]:
    """Observed id -> contract alias, pairing each side at most once (exact names first)."""
    mapping: dict[str, str] = {}
    used: set[str] = set()
    rules = (
        lambda c, o: c.label is not None and o.id == c.label,
        lambda c, o: o.id == c.alias,
        lambda c, o: c.label is not None and one_line(o.id) == c.label,
        lambda c, o: o.label in (c.label, c.alias),
        lambda c, o: loose_name(o.id) in (loose_name(c.label or ""), loose_name(c.alias)),
    )
    for rule in rules:
        for participant in contract:
            if participant.alias in used:
                continue
            for candidate in observed:
                if candidate.id not in mapping and rule(participant, candidate):
                    mapping[candidate.id] = participant.alias
                    used.add(participant.alias)
                    break
    return mapping

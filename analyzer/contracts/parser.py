"""Contract files: the Mermaid ``sequenceDiagram`` subset of docs/contracts.md, parsed.

The subset: ``participant``/``actor`` (and ``database``, ``queue``, ``boundary``,
``control``, ``entity``, ``collections``) declarations with ``as`` labels and Mermaid 11's
``@{ "type": ... }``; arrows ``->>``/``->`` (call), ``-x`` (a call expected to fail),
``-)``/``--)`` (async), ``-->>``/``-->``/``--x`` (returns, read and dropped); blocks
``loop``, ``opt``, ``alt ... else ... end``, ``par ... and ... end``. Notes, ``autonumber``,
``activate``, ``title``, ``rect``/``box`` frames, ``%%`` comments and front matter are
read and ignored. Anything else raises :class:`ContractSyntaxError` naming the file, the
line and the column (1-based), e.g. ``order.mmd:7:5: unknown arrow '-->>>'; use ->>, -->>,
-) or -x``.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Final

from analyzer.contracts.model import (
    BlockKind,
    CBlock,
    CMessage,
    Contract,
    CParticipant,
    Expectation,
    Item,
    MessageKind,
    ParticipantShape,
)
from analyzer.contracts.text import decode_entities, normalize_label
from analyzer.escaping import one_line

__all__ = ["ARROW_HELP", "ContractSyntaxError", "parse_contract"]

ARROW_HELP: Final = "use ->>, -->>, -) or -x"
MAX_PAR_BRANCHES: Final = 6
MAX_CONTRACT_BYTES: Final = 1_000_000

#: Arrows of the subset: (kind, expectation), or None for returns (read, not compared).
_SUPPORTED: Final[dict[str, tuple[MessageKind, Expectation] | None]] = {
    "->>": ("sync", "ok"),
    "->": ("sync", "ok"),
    "-x": ("any", "error"),
    "-)": ("async", "ok"),
    "--)": ("async", "ok"),
    "-->>": None,
    "-->": None,
    "--x": None,
}
#: Arrows Mermaid knows that the subset leaves out.
_UNSUPPORTED: Final = frozenset(
    {
        "<<->>", "<<-->>", "--|\\", "--|/", "--\\\\", "--//", "/|--", "\\|--", "//--",
        "\\\\--", "-|\\", "-|/", "-\\\\", "-//", "/|-", "\\|-", "//-", "\\\\-",
    }
)  # fmt: skip
_ARROW_CHARS: Final = frozenset("-<>)(/\\|")
#: ``%% runbook: URL-or-path`` (docs/contracts.md, "Runbooks").
_RUNBOOK: Final = re.compile(r"%%\s*runbook\s*:(.*)$", re.IGNORECASE)
_NAME_FORBIDDEN: Final = frozenset(":;,<>+()#%\"'{}`")
_SHAPES: Final[dict[str, ParticipantShape]] = {
    "participant": "participant",
    "actor": "actor",
    "database": "database",
    "queue": "queue",
    "boundary": "boundary",
    "control": "control",
    "entity": "entity",
    "collections": "collections",
}
_IGNORED: Final = frozenset(
    {"autonumber", "activate", "deactivate", "destroy", "links", "link", "properties",
     "details", "title", "acctitle", "accdescr"}
)  # fmt: skip
_OUTSIDE_SUBSET: Final = frozenset({"critical", "option", "break", "par_over"})
_BLOCKS: Final[dict[str, BlockKind]] = {"loop": "loop", "opt": "opt", "alt": "alt", "par": "par"}
_ENTITY_CODE: Final = re.compile(r"#(\d{1,7}|[A-Za-z][A-Za-z0-9]{1,31});")
_TYPE_IN_CONFIG: Final = re.compile(r"""["']?type["']?\s*:\s*["']?([A-Za-z]+)""")
_WORD: Final = re.compile(r"[A-Za-z_]+")


class ContractSyntaxError(ValueError):
    """A contract outside the subset. ``str()`` is ``FILE:LINE:COLUMN: message``."""

    def __init__(self, file: str, line: int, column: int, message: str) -> None:
        super().__init__(f"{file}:{line}:{column}: {message}")
        self.file = file
        self.line = line
        self.column = column
        self.message = message


@dataclass
class _Frame:
    """An open block while parsing: its branches so far (``rect``/``box`` are frames too)."""

    keyword: str
    label: str
    line: int
    column: int
    branches: list[list[Item]] = field(default_factory=lambda: [[]])


@dataclass
class _Statement:
    text: str  # stripped
    line: int
    column: int  # 1-based column of text[0]


def parse_contract(text: str, name: str = "contract.mmd") -> Contract:
    """The contract in ``text`` (a file's content); ``name`` prefixes error messages."""
    return _Parser(text, name).parse()


class _Parser:
    def __init__(self, text: str, name: str) -> None:
        self.text = text
        self.name = name
        self.participants: dict[str, CParticipant] = {}
        self.stack: list[_Frame] = [_Frame("document", "", 0, 0)]
        self.runbook: str | None = None
        self.runbook_line = 0

    def error(self, line: int, column: int, message: str) -> ContractSyntaxError:
        return ContractSyntaxError(self.name, line, column, message)

    # --- lines --------------------------------------------------------------------------

    def parse(self) -> Contract:
        if len(self.text.encode("utf-8", "replace")) > MAX_CONTRACT_BYTES:
            raise self.error(1, 1, f"the contract is over {MAX_CONTRACT_BYTES} bytes")
        lines = self.text.removeprefix("\ufeff").splitlines()
        header_seen = False
        index = self._skip_front_matter(lines)
        while index < len(lines):
            number = index + 1
            for statement in self._statements(lines[index], number):
                if not header_seen:
                    self._header(statement)
                    header_seen = True
                    continue
                self._statement(statement)
            index += 1
        if not header_seen:
            raise self.error(1, 1, "empty contract: expected 'sequenceDiagram'")
        if len(self.stack) > 1:
            frame = self.stack[-1]
            raise self.error(
                frame.line, frame.column, f"'{frame.keyword}' is never closed with 'end'"
            )
        items = tuple(self.stack[0].branches[0])
        contract = Contract.build(self.name, tuple(self.participants.values()), items)
        if self.runbook is not None:
            contract = dataclasses.replace(contract, runbook=self.runbook)
        if not contract.messages:
            raise self.error(len(lines) or 1, 1, "the contract draws no call or async message")
        return contract

    def _skip_front_matter(self, lines: list[str]) -> int:
        first = next((i for i, line in enumerate(lines) if line.strip()), None)
        if first is None or lines[first].strip() != "---":
            return 0
        for index in range(first + 1, len(lines)):
            if lines[index].strip() == "---":
                return index + 1
        raise self.error(first + 1, 1, "front matter opened with '---' is never closed")

    def _statements(self, raw: str, number: int) -> list[_Statement]:
        """A line's statements: ``;`` separates them (not inside an entity code ``#59;``)."""
        stripped = raw.strip()
        if stripped.startswith("%%"):
            self._comment(stripped, raw, number)
            return []
        if not stripped:
            return []
        out: list[_Statement] = []
        start = 0
        position = 0
        while position <= len(raw):
            if position == len(raw) or raw[position] == ";":
                piece = raw[start:position]
                text = piece.strip()
                if text:
                    column = start + (len(piece) - len(piece.lstrip())) + 1
                    out.append(_Statement(text, number, column))
                start = position + 1
                position += 1
                continue
            if raw[position] == "#":
                match = _ENTITY_CODE.match(raw, position)
                if match:
                    position = match.end()
                    continue
            position += 1
        return out

    def _comment(self, stripped: str, raw: str, number: int) -> None:
        """``%% runbook: URL-or-path`` names the contract's runbook; other comments are
        ignored (Mermaid ignores them all, so the file still renders)."""
        match = _RUNBOOK.match(stripped)
        if match is None:
            return
        column = raw.index("%%") + 1
        value = match.group(1).strip()
        if not value:
            raise self.error(number, column, "'%% runbook:' needs a URL or a path after it")
        if self.runbook is not None:
            raise self.error(
                number, column, f"a second '%% runbook:' (the first is on line {self.runbook_line})"
            )
        self.runbook, self.runbook_line = one_line(value), number

    def _header(self, statement: _Statement) -> None:
        words = statement.text.split()
        if words[0].lower() != "sequencediagram":
            raise self.error(
                statement.line,
                statement.column,
                f"expected 'sequenceDiagram' first (a contract is a Mermaid sequence "
                f"diagram), got {_quote(words[0])}",
            )
        if len(words) > 1:
            column = statement.column + statement.text.index(words[1], len(words[0]))
            raise self.error(
                statement.line, column, "nothing may follow 'sequenceDiagram' on its line"
            )

    # --- statements ---------------------------------------------------------------------

    def _statement(self, st: _Statement) -> None:
        match = _WORD.match(st.text)
        word = match.group(0).lower() if match else ""
        rest_at = match.end() if match else 0
        boundary = rest_at >= len(st.text) or not (
            st.text[rest_at].isalnum() or st.text[rest_at] in "_-.@"
        )
        if match and boundary:
            if word == "create":
                inner = st.text[rest_at:].lstrip()
                offset = len(st.text) - len(inner)
                self._statement(_Statement(inner, st.line, st.column + offset))
                return
            if word in _SHAPES:
                self._participant(st, _SHAPES[word], rest_at)
                return
            if word in _IGNORED or word == "note":
                return
            if word in _BLOCKS:
                self._open(st, word, rest_at)
                return
            if word in ("rect", "box"):
                self.stack.append(_Frame(word, "", st.line, st.column))
                return
            if word in ("else", "and"):
                self._branch(st, word, rest_at)
                return
            if word == "end":
                self._close(st, rest_at)
                return
            if word in _OUTSIDE_SUBSET:
                raise self.error(
                    st.line,
                    st.column,
                    f"'{word}' blocks are outside the contract subset; use loop, opt, alt or par",
                )
            if word == "sequencediagram":
                raise self.error(st.line, st.column, "'sequenceDiagram' may appear only once")
        self._message(st)

    def _participant(self, st: _Statement, shape: ParticipantShape, rest_at: int) -> None:
        rest = st.text[rest_at:]
        body = rest.strip()
        body_column = st.column + rest_at + (len(rest) - len(rest.lstrip()))
        if not body:
            raise self.error(st.line, st.column, f"'{st.text.split()[0]}' needs a name")
        label: str | None = None
        as_match = re.search(r"\s+as\s+", body)
        config = ""
        head = body
        if "@{" in body:
            at = body.index("@{")
            close = body.find("}", at)
            if close < 0:
                raise self.error(st.line, body_column + at, "'@{' is never closed with '}'")
            config = body[at + 2 : close]
            head = body[:at]
            tail = body[close + 1 :]
            as_match = re.match(r"\s+as\s+", tail)
            if as_match:
                label = tail[as_match.end() :]
            elif tail.strip():
                column = body_column + close + 1 + (len(tail) - len(tail.lstrip()))
                raise self.error(st.line, column, "expected 'as LABEL' or the end of the line")
        elif as_match:
            head = body[: as_match.start()]
            label = body[as_match.end() :]
        alias = head.strip()
        self._check_name(alias, st.line, body_column)
        type_match = _TYPE_IN_CONFIG.search(config)
        if type_match and type_match.group(1).lower() in _SHAPES:
            shape = _SHAPES[type_match.group(1).lower()]
        clean_label = normalize_label(decode_entities(label)) if label is not None else None
        existing = self.participants.get(alias)
        if existing is not None and existing.declared:
            raise self.error(st.line, body_column, f"participant {_quote(alias)} is declared twice")
        self.participants[alias] = CParticipant(alias, clean_label or None, shape, st.line, True)

    def _open(self, st: _Statement, word: str, rest_at: int) -> None:
        label = normalize_label(decode_entities(st.text[rest_at:]))
        self.stack.append(_Frame(word, label, st.line, st.column))

    def _branch(self, st: _Statement, word: str, rest_at: int) -> None:
        wanted = "alt" if word == "else" else "par"
        frame = self.stack[-1]
        if frame.keyword != wanted:
            where = f"inside '{frame.keyword}'" if len(self.stack) > 1 else "outside any block"
            raise self.error(
                st.line, st.column, f"'{word}' belongs to '{wanted}' blocks, found {where}"
            )
        if wanted == "par" and len(frame.branches) >= MAX_PAR_BRANCHES:
            raise self.error(
                st.line,
                st.column,
                f"a par block may have at most {MAX_PAR_BRANCHES} branches (any order of more "
                "is too many orders to check); split it",
            )
        frame.branches.append([])

    def _close(self, st: _Statement, rest_at: int) -> None:
        if st.text[rest_at:].strip():
            column = st.column + rest_at + 1
            raise self.error(st.line, column, "nothing may follow 'end' on its line")
        if len(self.stack) == 1:
            raise self.error(st.line, st.column, "'end' without an open block")
        frame = self.stack.pop()
        parent = self.stack[-1].branches[-1]
        if frame.keyword in ("rect", "box"):
            parent.extend(frame.branches[0])  # frames only style: their content stays
            return
        kind = _BLOCKS[frame.keyword]
        branches = tuple(tuple(branch) for branch in frame.branches)
        parent.append(CBlock(kind, frame.label, branches, frame.line))

    # --- messages -----------------------------------------------------------------------

    def _message(self, st: _Statement) -> None:
        text = st.text
        colon = text.find(":")
        head = text if colon < 0 else text[:colon]
        candidates = _arrow_candidates(head)
        if not candidates:
            word = text.split()[0]
            raise self.error(
                st.line,
                st.column,
                f"unknown statement {_quote(word)}: expected a message 'A->>B: label', a "
                "participant, a block (loop, opt, alt, par) or 'end'",
            )
        chosen: tuple[int, str, str, str] | None = None
        problem: tuple[int, str] | None = None
        for position, token in candidates:
            arrow, marker = token, ""
            if arrow not in _SUPPORTED and arrow[-1:] == "-" and arrow[:-1] in _SUPPORTED:
                arrow, marker = arrow[:-1], "-"  # `->>-B`: deactivation marker
            column = st.column + position
            if arrow not in _SUPPORTED:
                if problem is None:
                    problem = (column, _arrow_problem(arrow))
                continue
            source = head[:position].strip()
            target = head[position + len(arrow) + len(marker) :].strip()
            if not marker and target[:1] in ("+", "-"):
                target = target[1:].strip()
            name_problem = _name_problem(source, f"before '{arrow}'") or _name_problem(
                target, f"after '{arrow}'"
            )
            if name_problem:
                if problem is None:
                    problem = (column, name_problem)
                continue
            chosen = (position, arrow, source, target)
            break
        if chosen is None:
            assert problem is not None
            raise self.error(st.line, problem[0], problem[1])
        position, arrow, source, target = chosen
        if colon < 0:
            raise self.error(
                st.line,
                st.column + len(text),
                f"a message needs a label: '{source}{arrow}{target}: text'",
            )
        label_raw = text[colon + 1 :]
        stray = _stray_hash(label_raw)
        if stray >= 0:
            raise self.error(
                st.line,
                st.column + colon + 1 + stray,
                "'#' starts a comment in Mermaid; write #35; for a literal '#'",
            )
        label = normalize_label(decode_entities(label_raw))
        for alias in (source, target):
            if alias not in self.participants:
                self.participants[alias] = CParticipant(alias, None, "participant", st.line, False)
        meaning = _SUPPORTED[arrow]
        if meaning is None:
            return  # a return: read, checked for syntax, not compared
        kind, expect = meaning
        self.stack[-1].branches[-1].append(
            CMessage(source, target, label, kind, expect, st.line, st.column + position)
        )

    def _check_name(self, name: str, line: int, column: int) -> None:
        problem = _name_problem(name, "")
        if problem:
            raise self.error(line, column, problem)


def _arrow_candidates(head: str) -> list[tuple[int, str]]:
    """Runs of arrow characters that could be the arrow, in order of position.

    A lone ``-`` between name characters is part of a name (``orders-db``); an ``x`` right
    after ``-`` belongs to the arrow (``-x``, ``--x``), as Mermaid reads it.
    """
    out: list[tuple[int, str]] = []
    index = 0
    while index < len(head):
        if head[index] not in _ARROW_CHARS:
            index += 1
            continue
        start = index
        while index < len(head) and head[index] in _ARROW_CHARS:
            index += 1
        run = head[start:index]
        if run.endswith("-") and index < len(head) and head[index] == "x":
            run += "x"
            index += 1
        elif run == "-" and start > 0 and index < len(head) and head[index] not in " \t":
            continue  # a hyphen inside a name
        out.append((start, run))
    return out


def _arrow_problem(arrow: str) -> str:
    if arrow in _UNSUPPORTED:
        what = "bidirectional" if arrow.startswith("<<") else "half"
        return f"{what} arrow '{arrow}' is outside the contract subset; {ARROW_HELP}"
    return f"unknown arrow '{arrow}'; {ARROW_HELP}"


def _name_problem(name: str, side: str) -> str | None:
    if not name:
        return f"missing participant {side}" if side else "missing participant name"
    bad = next((c for c in name if c in _NAME_FORBIDDEN or ord(c) < 32), None)
    if bad is not None:
        return f"participant name {_quote(name)} may not contain {_quote(bad)}"
    return None


def _stray_hash(text: str) -> int:
    """Index of a ``#`` that does not start an entity code, else -1."""
    position = text.find("#")
    while position >= 0:
        match = _ENTITY_CODE.match(text, position)
        if not match:
            return position
        position = text.find("#", match.end())
    return -1


def _quote(text: str) -> str:
    return "'" + one_line(text)[:60] + "'"

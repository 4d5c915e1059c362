"""A hand-written recursive-descent parser for the query language.

Errors are :class:`QueryError`: one line naming the 1-based position and what was
expected (``position 14: expected a value ... , found '}'``). Nesting (parentheses,
``!``, braces) is bounded by :data:`MAX_DEPTH`, and the size of a query by
:data:`MAX_CONDITIONS` comparisons and :data:`MAX_SPANSETS` spanset filters, so a hostile
query can neither exhaust the interpreter's stack nor grow the SQL without bound. Runs of
one operator are parsed by loops, not recursion.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal, TypeVar, cast

from spanstore.query.ast import (
    INTRINSICS,
    KIND_WORDS,
    STATUS_WORDS,
    STRUCTURAL_OPS,
    Aggregate,
    AggregateFunc,
    BoolOp,
    CompareOp,
    Comparison,
    Condition,
    Field,
    Not,
    Query,
    SpansetExpr,
    SpansetFilter,
    SpansetOp,
    Structural,
    StructuralOp,
    Value,
)

#: Deepest nesting of parentheses, ``!`` and braces.
MAX_DEPTH: Final = 32
_Node = TypeVar("_Node")
#: Most comparisons in one query; most spanset filters.
MAX_CONDITIONS: Final = 256
MAX_SPANSETS: Final = 16
#: Longest query accepted (characters).
MAX_QUERY_CHARS: Final = 200_000

_DURATION_UNITS: Final = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_NUMBER: Final = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(ns|us|µs|ms|s|m|h)?")
_WORD: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_:]*")
#: An attribute name after ``span.`` / ``resource.`` / ``.``: dotted words (``http.route``,
#: ``k8s.pod-name``); anything else needs double quotes (``span."a b"``).
_ATTRIBUTE: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/]*")
_OPERATORS: Final = (
    "!>>", "!<<", "&&", "||", ">>", "<<", "!=", "=~", "!~", ">=", "<=", "!>", "!<",
    "{", "}", "(", ")", "|", "=", ">", "<", "~", "!", ",",
)  # fmt: skip
_ESCAPES: Final = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}


class QueryError(ValueError):
    """The query is wrong; ``str()`` is the one-line message for the user."""

    def __init__(self, pos: int, message: str) -> None:
        super().__init__(f"query error at position {pos}: {message}")
        self.pos = pos


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "op", "word", "attr", "string", "number", "duration", "end"
    text: str
    pos: int  # 1-based
    value: object = None


def _shown(token: Token) -> str:
    if token.kind == "end":
        return "the end of the query"
    text = token.text if len(token.text) <= 24 else token.text[:21] + "..."
    return repr(text)


def tokenize(text: str) -> list[Token]:
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(1, f"the query is longer than {MAX_QUERY_CHARS} characters")
    tokens: list[Token] = []
    i = 0
    n = len(text)
    while i < n:
        char = text[i]
        if char.isspace():
            i += 1
            continue
        pos = i + 1
        if char == '"':
            value, i = _string(text, i)
            tokens.append(Token("string", text[pos - 1 : i], pos, value))
            continue
        if char == "." or (
            text.startswith(("span.", "resource."), i) and not _is_word_char(text, i - 1)
        ):
            scope = "any" if char == "." else text[i : text.index(".", i)]
            i = text.index(".", i) + 1
            if i < n and text[i] == '"':
                name, i = _string(text, i)
            else:
                match = _ATTRIBUTE.match(text, i)
                if match is None:
                    raise QueryError(i + 1, f"expected an attribute name after '{scope}.'")
                name = match.group(0).rstrip(".")
                i = match.start() + len(name)
            if not name:
                raise QueryError(i + 1, "expected an attribute name, found an empty one")
            tokens.append(Token("attr", text[pos - 1 : i], pos, (scope, name)))
            continue
        if char.isdigit() or (char == "-" and i + 1 < n and (text[i + 1].isdigit())):
            match = _NUMBER.match(text, i)
            assert match is not None
            i = match.end()
            if i < n and (text[i].isalpha() or text[i] == "_"):
                raise QueryError(
                    i + 1,
                    f"expected a number or a duration (300ms, 2s), found {text[pos - 1 : i + 1]!r}",
                )
            number_text = match.group(0)
            unit = match.group(1)
            if unit:
                amount = float(number_text[: -len(unit)])
                tokens.append(
                    Token("duration", number_text, pos, round(amount * _DURATION_UNITS[unit]))
                )
            else:
                is_int = re.fullmatch(r"-?\d+", number_text) is not None
                tokens.append(
                    Token(
                        "number",
                        number_text,
                        pos,
                        int(number_text) if is_int else float(number_text),
                    )
                )
            continue
        match = _WORD.match(text, i)
        if match is not None:
            i = match.end()
            tokens.append(Token("word", match.group(0), pos))
            continue
        for op in _OPERATORS:
            if text.startswith(op, i):
                tokens.append(Token("op", op, pos))
                i += len(op)
                break
        else:
            raise QueryError(pos, f"unexpected character {char!r}")
    tokens.append(Token("end", "", n + 1))
    return tokens


def _is_word_char(text: str, i: int) -> bool:
    return i >= 0 and (text[i].isalnum() or text[i] in "_.:")


def _string(text: str, i: int) -> tuple[str, int]:
    """The double-quoted string starting at ``text[i]``: (its value, the index after it)."""
    out: list[str] = []
    j = i + 1
    n = len(text)
    while j < n:
        char = text[j]
        if char == '"':
            return "".join(out), j + 1
        if char == "\\":
            if j + 1 >= n:
                break
            escaped = text[j + 1]
            if escaped not in _ESCAPES:
                raise QueryError(
                    j + 1, f"unknown escape '\\{escaped}' in a string (use \\\\ for a backslash)"
                )
            out.append(_ESCAPES[escaped])
            j += 2
            continue
        out.append(char)
        j += 1
    raise QueryError(i + 1, "a string is not closed (expected '\"')")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0
        self.conditions = 0
        self.spansets = 0

    # -- helpers
    @property
    def token(self) -> Token:
        return self.tokens[self.i]

    def at(self, *ops: str) -> bool:
        return self.token.kind == "op" and self.token.text in ops

    def advance(self) -> Token:
        token = self.token
        self.i += 1
        return token

    def expect(self, op: str, what: str | None = None) -> Token:
        if not self.at(op):
            self.fail(what or f"'{op}'")
        return self.advance()

    def fail(self, expected: str, token: Token | None = None) -> QueryError:
        token = token or self.token
        raise QueryError(token.pos, f"expected {expected}, found {_shown(token)}")

    def enter(self, token: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QueryError(token.pos, f"the query nests deeper than {MAX_DEPTH} levels")

    # -- grammar
    def query(self) -> Query:
        if self.token.kind == "end":
            self.fail("a spanset filter such as { status = error }")
        spansets = self.spanset_or()
        pipeline: list[Aggregate] = []
        while self.at("|"):
            self.advance()
            pipeline.append(self.aggregate())
        if self.token.kind != "end":
            expected = "'|', '&&', '||', a structural operator (>> > << < ~) or the end"
            self.fail(expected)
        return Query(text=self.text, spansets=spansets, pipeline=tuple(pipeline))

    def joined(
        self,
        op: Literal["&&", "||"],
        operand: Callable[[], _Node],
        node: Callable[[Literal["&&", "||"], tuple[_Node, ...], int], _Node],
    ) -> _Node:
        """Operands joined by ``op``: the one operand, or a ``node`` of them all."""
        start = self.token
        operands = [operand()]
        while self.at(op):
            self.advance()
            operands.append(operand())
        return operands[0] if len(operands) == 1 else node(op, tuple(operands), start.pos)

    def spanset_or(self) -> SpansetExpr:
        return self.joined("||", self.spanset_and, SpansetOp)

    def spanset_and(self) -> SpansetExpr:
        return self.joined("&&", self.structural, SpansetOp)

    def structural(self) -> SpansetExpr:
        start = self.token
        first = self.spanset_primary()
        steps: list[tuple[StructuralOp, SpansetExpr]] = []
        while self.at(*STRUCTURAL_OPS):
            op = cast(StructuralOp, self.advance().text)
            steps.append((op, self.spanset_primary()))
        return first if not steps else Structural(first, tuple(steps), start.pos)

    def spanset_primary(self) -> SpansetExpr:
        token = self.token
        if self.at("("):
            self.enter(token)
            self.advance()
            inner = self.spanset_or()
            self.expect(")", "')' closing the '(' at position " + str(token.pos))
            self.depth -= 1
            return inner
        if self.at("{"):
            self.enter(token)
            self.advance()
            self.spansets += 1
            if self.spansets > MAX_SPANSETS:
                raise QueryError(
                    token.pos, f"the query has more than {MAX_SPANSETS} spanset filters"
                )
            condition = None if self.at("}") else self.condition_or()
            self.expect("}", "'}', '&&', '||' or a comparison operator")
            self.depth -= 1
            return SpansetFilter(condition, token.pos)
        self.fail("'{' starting a spanset filter")
        raise AssertionError  # unreachable: fail raises

    def condition_or(self) -> Condition:
        return self.joined("||", self.condition_and, BoolOp)

    def condition_and(self) -> Condition:
        return self.joined("&&", self.condition_unary, BoolOp)

    def condition_unary(self) -> Condition:
        token = self.token
        if self.at("!"):
            self.enter(token)
            self.advance()
            operand = self.condition_unary()
            self.depth -= 1
            return Not(operand, token.pos)
        if self.at("("):
            self.enter(token)
            self.advance()
            inner = self.condition_or()
            self.expect(")", f"')' closing the '(' at position {token.pos}")
            self.depth -= 1
            return inner
        return self.comparison()

    def comparison(self) -> Comparison:
        field = self.field()
        op_token = self.token
        if not self.at("=", "!=", ">", ">=", "<", "<=", "=~", "!~"):
            self.fail("a comparison operator (= != > >= < <= =~ !~)")
        self.advance()
        value = self.value()
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise QueryError(field.pos, f"the query has more than {MAX_CONDITIONS} comparisons")
        comparison = Comparison(field, cast(CompareOp, op_token.text), value, field.pos)
        check_comparison(comparison, op_token.pos)
        return comparison

    def field(self) -> Field:
        token = self.token
        if token.kind == "attr":
            self.advance()
            scope, name = cast(tuple[str, str], token.value)
            return Field(scope, name, token.pos)  # type: ignore[arg-type]
        if token.kind == "word":
            self.advance()
            if token.text in INTRINSICS:
                return Field("intrinsic", token.text, token.pos)
            raise QueryError(
                token.pos,
                f"unknown intrinsic {token.text!r} (expected one of {', '.join(INTRINSICS)}; "
                f"attributes need a scope: span.{token.text}, resource.{token.text} "
                f"or .{token.text})",
            )
        self.fail("a field (span.KEY, resource.KEY, .KEY, name, status, kind, duration, trace:...)")
        raise AssertionError

    def value(self) -> Value:
        token = self.token
        kind = token.kind
        if kind == "string":
            self.advance()
            return Value("string", cast(str, token.value), token.pos)
        if kind == "number":
            self.advance()
            return Value("number", cast(int | float, token.value), token.pos)
        if kind == "duration":
            self.advance()
            return Value("duration", cast(int, token.value), token.pos)
        if kind == "word":
            word = token.text
            if word in ("true", "false"):
                self.advance()
                return Value("bool", word == "true", token.pos)
            if word == "nil":
                self.advance()
                return Value("nil", None, token.pos)
            if word in STATUS_WORDS:
                self.advance()
                return Value("status", word, token.pos)
            if word in KIND_WORDS:
                self.advance()
                return Value("kind", word, token.pos)
        self.fail(
            'a value (a "string", a number, a duration like 300ms, true/false, nil, '
            "a status ok/error/unset or a kind server/client/producer/consumer/internal)"
        )
        raise AssertionError

    def aggregate(self) -> Aggregate:
        token = self.token
        if token.kind != "word" or token.text not in ("count", "avg", "max", "min"):
            self.fail("count(), avg(duration), max(duration) or min(duration) after '|'")
        func = cast(AggregateFunc, self.advance().text)
        self.expect("(")
        if func != "count":
            argument = self.token
            if argument.kind != "word" or argument.text != "duration":
                self.fail(f"'duration' inside {func}( ) (only durations are aggregated)")
            self.advance()
        self.expect(")")
        op_token = self.token
        if not self.at("=", "!=", ">", ">=", "<", "<="):
            self.fail("a comparison operator (= != > >= < <=)")
        self.advance()
        value = self.value()
        if func == "count" and (value.kind != "number" or not isinstance(value.value, int)):
            raise QueryError(value.pos, "expected a whole number after count() " + op_token.text)
        if func != "count" and value.kind != "duration":
            raise QueryError(
                value.pos, f"expected a duration (300ms, 2s) after {func}(duration) {op_token.text}"
            )
        return Aggregate(func, cast(CompareOp, op_token.text), value, token.pos)


_ORDERING: Final = (">", ">=", "<", "<=")


def check_comparison(comparison: Comparison, op_pos: int) -> None:
    """Type rules: what each field may be compared with, and how."""
    field, op, value = comparison.field, comparison.op, comparison.value
    name = field.text()
    if value.kind == "nil" and op not in ("=", "!="):
        raise QueryError(op_pos, f"nil is compared with = or != only, found '{op}'")
    if op in ("=~", "!~") and value.kind != "string":
        raise QueryError(value.pos, f"expected a \"regular expression\" (a string) after '{op}'")
    if op in ("=~", "!~"):
        _check_regex(cast(str, value.value), value.pos)
    if field.scope != "intrinsic":
        if op in _ORDERING and value.kind not in ("number", "duration", "string"):
            raise QueryError(
                value.pos, f"'{op}' compares numbers, durations or strings, found {value.kind}"
            )
        if value.kind in ("status", "kind"):
            raise QueryError(
                value.pos,
                f'expected a "string" to compare {name} with, found the word {value.value!r}',
            )
        return
    if field.name in ("duration", "trace:duration"):
        if value.kind != "duration":
            raise QueryError(
                value.pos,
                f"expected a duration (300ms, 2s) to compare {name} with, "
                f"found {_kind_text(value)}",
            )
        if op in ("=~", "!~"):
            raise QueryError(op_pos, f"{name} is compared with = != > >= < <=, not '{op}'")
        return
    if field.name == "status":
        if value.kind != "status" or op not in ("=", "!="):
            raise QueryError(
                value.pos,
                f"expected status = or != ok, error or unset, found {op} {_kind_text(value)}",
            )
        return
    if field.name == "kind":
        if value.kind != "kind" or op not in ("=", "!="):
            raise QueryError(
                value.pos,
                "expected kind = or != server, client, producer, consumer or internal, "
                f"found {op} {_kind_text(value)}",
            )
        return
    # name, trace:rootService, trace:rootName: text
    if value.kind != "string":
        raise QueryError(
            value.pos, f'expected a "string" to compare {name} with, found {_kind_text(value)}'
        )


def _kind_text(value: Value) -> str:
    if value.kind == "string":
        return "a string"
    if value.kind == "nil":
        return "nil"
    return (
        f"{value.kind} {value.value!r}" if value.kind in ("status", "kind") else f"a {value.kind}"
    )


#: Regular expressions run on RE2 (DuckDB, ClickHouse): no back-references or look-around.
_UNSUPPORTED_REGEX: Final = re.compile(r"\\[1-9]|\(\?[=!<]")


def _check_regex(pattern: str, pos: int) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise QueryError(pos, f"invalid regular expression: {exc.msg}") from None
    if _UNSUPPORTED_REGEX.search(pattern):
        raise QueryError(
            pos, "invalid regular expression: back-references and look-around are not supported"
        )


def parse(text: str) -> Query:
    """The query's syntax tree; raises :class:`QueryError` with a one-line message."""
    return _Parser(text).query()

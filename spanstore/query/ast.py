"""The query language's syntax tree (SPEC.md "Query language": a TraceQL subset).

Every node carries ``pos``: the 1-based character position in the query text where it
starts, so that errors found after parsing (a duration compared with a string, an
unknown intrinsic) name the place the user has to fix.

Chains of the same operator (``a && b && c``, ``{a} >> {b} > {c}``) are kept flat, in
tuples, rather than as left-deep binary trees: a 100 kB query of ``&&`` conditions is
then a wide tree, not a deep one, and nothing that walks it needs deep recursion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

Scope: TypeAlias = Literal["intrinsic", "span", "resource", "any"]
ValueKind: TypeAlias = Literal["string", "number", "duration", "bool", "status", "kind", "nil"]
CompareOp: TypeAlias = Literal["=", "!=", ">", ">=", "<", "<=", "=~", "!~"]
StructuralOp: TypeAlias = Literal[">>", ">", "<<", "<", "~", "!>>", "!>", "!<<", "!<", "!~"]
AggregateFunc: TypeAlias = Literal["count", "avg", "max", "min"]

INTRINSICS: Final = (
    "name",
    "status",
    "kind",
    "duration",
    "trace:duration",
    "trace:rootService",
    "trace:rootName",
)
STATUS_WORDS: Final = ("ok", "error", "unset")
KIND_WORDS: Final = ("server", "client", "producer", "consumer", "internal")
STRUCTURAL_OPS: Final = (">>", ">", "<<", "<", "~", "!>>", "!>", "!<<", "!<", "!~")


@dataclass(frozen=True, slots=True)
class Field:
    scope: Scope
    name: str  # the intrinsic, or the attribute key without its scope
    pos: int

    def text(self) -> str:
        if self.scope == "intrinsic":
            return self.name
        return f"{'' if self.scope == 'any' else self.scope}.{self.name}"


@dataclass(frozen=True, slots=True)
class Value:
    kind: ValueKind
    #: str for string/status/kind, int or float for number, int nanoseconds for duration,
    #: bool for bool, None for nil.
    value: str | int | float | bool | None
    pos: int


@dataclass(frozen=True, slots=True)
class Comparison:
    field: Field
    op: CompareOp
    value: Value
    pos: int


@dataclass(frozen=True, slots=True)
class Not:
    operand: Condition
    pos: int


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: Literal["&&", "||"]
    operands: tuple[Condition, ...]
    pos: int


Condition: TypeAlias = Comparison | Not | BoolOp


@dataclass(frozen=True, slots=True)
class SpansetFilter:
    condition: Condition | None  # None: ``{ }``, every span
    pos: int


@dataclass(frozen=True, slots=True)
class Structural:
    """``first OP1 s1 OP2 s2 ...``, left to right; yields the last right-hand spans."""

    first: SpansetExpr
    steps: tuple[tuple[StructuralOp, SpansetExpr], ...]
    pos: int


@dataclass(frozen=True, slots=True)
class SpansetOp:
    """Spansets joined by ``&&`` (every one present in the trace) or ``||``."""

    op: Literal["&&", "||"]
    operands: tuple[SpansetExpr, ...]
    pos: int


SpansetExpr: TypeAlias = SpansetFilter | Structural | SpansetOp


@dataclass(frozen=True, slots=True)
class Aggregate:
    """``| count() OP N`` or ``| avg|max|min(duration) OP D``, per trace."""

    func: AggregateFunc
    op: CompareOp
    value: Value
    pos: int


@dataclass(frozen=True, slots=True)
class Query:
    text: str
    spansets: SpansetExpr
    pipeline: tuple[Aggregate, ...]

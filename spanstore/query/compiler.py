"""Compiles a query's syntax tree to SQL: DuckDB or ClickHouse, seqtrace's own tables or
the OpenTelemetry Collector's ``otel_traces``.

Every value of the query (strings, numbers, regular expressions, attribute keys, byte
patterns) becomes a bound parameter (``$qN``); the SQL text is built only from this
module's own fragments, so nothing a user typed is ever SQL. For ClickHouse, whose
transports take literals, strings are bound as bytes and rendered by the store as
``unhex('...')``: the user's text does not appear in the statement even quoted.

The result is a chain of CTEs. Each spanset filter is one scan of the spans in the range,
narrowed to (trace, span, parent, duration, start). Structural operators are semi-joins on
the parent id within a trace; ``>>``/``<<`` walk the tree with a recursive CTE over the
narrow (trace, span, parent) projection of the traces that hold both sides. ``&&``/``||``
between spansets and the pipeline are set operations and GROUP BY on those rows.

Attributes (see docs/query.md, "How attributes are evaluated"):
* seqtrace layout: ``resource.service.name`` and the semantic-convention attributes
  (``spanstore.semconv``) are columns; other resource attributes are evaluated here, in
  Python, over the store's few distinct resources (a list of resource ids is bound);
  other span attributes live only in ``raw`` (protobuf): ``=``, ``!=`` and ``nil`` are
  byte-pattern tests (``spanstore.query.protobytes``); ordering and regexes decode the
  spans that carry the key (DuckDB functions, ``spanstore.query.rawattrs``).
* otel layout: the attribute maps, ``SpanAttributes[key]`` / ``ResourceAttributes[key]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from spanstore.query.ast import (
    Aggregate,
    BoolOp,
    Comparison,
    Condition,
    Not,
    Query,
    SpansetExpr,
    SpansetFilter,
    SpansetOp,
    Structural,
    Value,
)
from spanstore.query.parser import QueryError
from spanstore.query.protobytes import equal_patterns, key_prefix
from spanstore.query.rawattrs import NUMBER_FUNCTION, TEXT_FUNCTION
from spanstore.semconv import INT_COLUMNS, KEY_TO_COLUMN

Engine = Literal["duckdb", "clickhouse"]
Layout = Literal["seqtrace", "otel"]

#: How deep a ``>>``/``<<`` walk follows parent links (a cycle of bad parent ids ends here).
MAX_TREE_DEPTH: Final = 256
_STATUS_CODES: Final = {"unset": 0, "ok": 1, "error": 2}
_KIND_CODES: Final = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
_SQL_OPS: Final = {"=": "=", "!=": "<>", ">": ">", ">=": ">=", "<": "<", "<=": "<="}
#: A trace's spans are looked for this far around its matching spans (traces longer than
#: an hour are cut there, as in the span frame).
TRACE_MARGIN_NS: Final = 3_600_000_000_000
#: Far past/future for open ranges.
FAR_PAST: Final = -(1 << 62)
FAR_FUTURE: Final = 1 << 62

AttrValue = str | int | float | bool | bytes | list[Any] | dict[str, Any] | None
#: resource id -> its attributes (seqtrace layout: evaluated in Python).
Resources = Mapping[int, Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Target:
    engine: Engine
    layout: Layout
    table: str  # SQL text of the spans table (a quoted identifier for otel)

    @property
    def otel(self) -> bool:
        return self.layout == "otel"


DUCKDB: Final = Target("duckdb", "seqtrace", "spans")
CLICKHOUSE: Final = Target("clickhouse", "seqtrace", "seqtrace_spans")


@dataclass(slots=True)
class Compiled:
    """CTEs computing ``result(tid, sid, pid, dur, st)`` and their parameters."""

    target: Target
    ctes: list[tuple[str, str]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    recursive: bool = False
    #: The WHERE condition of a query that is one spanset filter (no pipeline, no trace
    #: facts): statements that read spans can test it in place of joining ``result``.
    simple_where: str | None = None
    #: Whether ``result`` has the span ids (``sid``, ``pid``); plain filters leave the id
    #: columns unread (at 10M spans, reading them is most of a filter's time).
    span_ids: bool = True

    def with_clause(self, extra: Sequence[tuple[str, str]] = ()) -> str:
        parts = [f"{name} AS ({body})" for name, body in [*self.ctes, *extra]]
        return ("WITH RECURSIVE " if self.recursive else "WITH ") + ",\n".join(parts)


class _Compiler:
    def __init__(
        self,
        target: Target,
        resources: Resources | None,
        start: int,
        end: int,
        prefix: str = "q",
    ) -> None:
        self.t = target
        self.resources = resources
        self.out = Compiled(target)
        self.out.params["lo"] = start
        self.out.params["hi"] = end
        self.prefix = prefix
        self.count = 0
        self.needs_traces = False
        self.columns = "tid, sid, pid, dur, st"
        #: The condition of the last spanset filter compiled (None when it joins ``tr``).
        self.last_where: str | None = None

    # ------------------------------------------------------------------ columns
    def col(self, name: str, alias: str = "s") -> str:
        """Engine/layout spelling of a span column."""
        otel = {
            "tid": "TraceId",
            "sid": "SpanId",
            "pid": "ParentSpanId",
            "name": "SpanName",
            "service": "ServiceName",
            "start": "toInt64(toUnixTimestamp64Nano({a}.Timestamp))",
            "dur": "toInt64({a}.Duration)",
        }
        ours = {
            "tid": "trace_id",
            "sid": "span_id",
            "pid": "parent_span_id",
            "name": "name",
            "service": "service_name",
            "start": "start_unix_nano",
            "dur": "duration_ns",
        }
        text = (otel if self.t.otel else ours)[name]
        return text.format(a=alias) if "{a}" in text else f"{alias}.{text}"

    def range_where(self, alias: str = "s") -> str:
        if self.t.otel:
            return (
                f"{alias}.Timestamp >= fromUnixTimestamp64Nano(toInt64($lo)) "
                f"AND {alias}.Timestamp < fromUnixTimestamp64Nano(toInt64($hi))"
            )
        return f"{alias}.start_unix_nano >= $lo AND {alias}.start_unix_nano < $hi"

    def is_root(self, alias: str = "s") -> str:
        if self.t.otel:
            return f"{alias}.ParentSpanId = ''"
        return f"{alias}.parent_span_id IS NULL"

    def status_is(self, word: str, alias: str = "s") -> str:
        if self.t.otel:
            spelled = f"upper(replaceRegexpOne(toString({alias}.StatusCode), '^STATUS_CODE_', ''))"
            return f"{spelled} = {self.param(word.upper())}"
        return f"{alias}.status_code = {self.param(_STATUS_CODES[word])}"

    def kind_is(self, word: str, alias: str = "s") -> str:
        if self.t.otel:
            spelled = f"upper(replaceRegexpOne(toString({alias}.SpanKind), '^SPAN_KIND_', ''))"
            return f"{spelled} = {self.param(word.upper())}"
        return f"{alias}.kind = {self.param(_KIND_CODES[word])}"

    def arg_min(self, value: str, key: str) -> str:
        return f"{'argMin' if self.t.engine == 'clickhouse' else 'arg_min'}({value}, {key})"

    def root_key(self, alias: str = "s") -> str:
        """Sorts a trace's root span first, then by start (the earliest span stands in
        for a root that was not received)."""
        return (
            f"{self.col('start', alias)} + CASE WHEN {self.is_root(alias)} THEN 0 "
            f"ELSE 4000000000000000000 END"
        )

    def hex_tid(self, expr: str) -> str:
        return expr if self.t.otel else f"lower(hex({expr}))"

    # ------------------------------------------------------------------ parameters
    def param(self, value: Any) -> str:
        name = f"{self.prefix}{self.count}"
        self.count += 1
        if self.t.engine == "clickhouse" and isinstance(value, str):
            value = value.encode()  # rendered as unhex('...'): no user text in the SQL
        self.out.params[name] = value
        return f"${name}"

    def cte(self, prefix: str, body: str) -> str:
        name = f"{prefix}{len(self.out.ctes)}"
        self.out.ctes.append((name, body))
        return name

    # ------------------------------------------------------------------ conditions
    def condition(self, node: Condition) -> str:
        # Iterative over wide &&/|| runs; depth is bounded by the parser.
        if isinstance(node, Comparison):
            return f"coalesce({self.comparison(node)}, false)"
        if isinstance(node, Not):
            return f"(NOT {self.condition(node.operand)})"
        assert isinstance(node, BoolOp)
        joiner = " AND " if node.op == "&&" else " OR "
        return "(" + joiner.join(self.condition(o) for o in node.operands) + ")"

    def comparison(self, c: Comparison) -> str:
        f = c.field
        if f.scope == "intrinsic":
            return self.intrinsic(c)
        if f.scope == "any":
            span = self.attribute("span", c)
            resource = self.attribute("resource", c)
            joiner = " AND " if (c.value.kind == "nil" and c.op == "=") else " OR "
            return f"(coalesce({span}, false){joiner}coalesce({resource}, false))"
        return self.attribute(f.scope, c)

    def intrinsic(self, c: Comparison) -> str:
        name, op, value = c.field.name, c.op, c.value
        if name == "status":
            test = self.status_is(str(value.value))
            return test if op == "=" else f"NOT ({test})"
        if name == "kind":
            test = self.kind_is(str(value.value))
            return test if op == "=" else f"NOT ({test})"
        if name == "duration":
            return f"{self.col('dur')} {_SQL_OPS[op]} {self.param(value.value)}"
        if name.startswith("trace:"):
            self.needs_traces = True
            column = {
                "trace:duration": "tr.dur",
                "trace:rootService": "tr.root_service",
                "trace:rootName": "tr.root_name",
            }[name]
            if name == "trace:duration":
                return f"{column} {_SQL_OPS[op]} {self.param(value.value)}"
            return self.text_test(column, op, value)
        return self.text_test(self.col("name"), op, value)  # name

    def text_test(self, expr: str, op: str, value: Value) -> str:
        """A text expression compared with a string value (NULL when absent)."""
        if value.kind == "nil":
            return f"{expr} IS NULL" if op == "=" else f"{expr} IS NOT NULL"
        if value.kind != "string":
            return "false" if op != "!=" else f"{expr} IS NOT NULL"
        text = str(value.value)
        if op in ("=~", "!~"):
            test = self.regex(expr, text)
            return test if op == "=~" else f"({expr} IS NOT NULL AND NOT {test})"
        return f"{expr} {_SQL_OPS[op]} {self.param(text)}"

    def regex(self, expr: str, pattern: str) -> str:
        if self.t.engine == "clickhouse":
            return f"match({expr}, {self.param('^(?:' + pattern + ')$')})"
        return f"regexp_full_match({expr}, {self.param(pattern)})"

    def number_test(self, expr: str, op: str, value: Value) -> str:
        if value.kind == "nil":
            return f"{expr} IS NULL" if op == "=" else f"{expr} IS NOT NULL"
        if value.kind != "number":
            return "false" if op != "!=" else f"{expr} IS NOT NULL"
        return f"{expr} {_SQL_OPS[op]} {self.param(value.value)}"

    def attribute(self, scope: str, c: Comparison) -> str:
        key = c.field.name
        if scope == "resource" and key == "service.name":
            return self.text_test(self.col("service"), c.op, c.value)
        if self.t.otel:
            return self.map_attribute(
                "SpanAttributes" if scope == "span" else "ResourceAttributes", c
            )
        if scope == "resource":
            return self.resource_attribute(c)
        mapped = KEY_TO_COLUMN.get(key)
        if mapped is not None:
            column = f"s.{mapped[0]}"
            if mapped[0] in INT_COLUMNS:
                return self.number_test(column, c.op, c.value)
            return self.text_test(column, c.op, c.value)
        return self.raw_attribute(c)

    def map_attribute(self, column: str, c: Comparison) -> str:
        key = self.param(c.field.name)
        present = f"mapContains(s.{column}, {key})"
        raw = f"s.{column}[{key}]"
        op, value = c.op, c.value
        if value.kind == "nil":
            return f"NOT {present}" if op == "=" else present
        if value.kind == "number":
            number = f"toFloat64OrNull({raw})"
            if op == "!=":
                return f"({present} AND NOT coalesce({number} = {self.param(float(value.value or 0))}, false))"  # noqa: E501
            return f"({present} AND {number} {_SQL_OPS[op]} {self.param(float(value.value or 0))})"
        if value.kind == "bool":
            text = "true" if value.value else "false"
            if op == "!=":
                return f"({present} AND {raw} <> {self.param(text)})"
            return f"({present} AND {raw} = {self.param(text)})" if op == "=" else "false"
        text = str(value.value)
        if op in ("=~", "!~"):
            test = self.regex(raw, text)
            return f"({present} AND {'' if op == '=~' else 'NOT '}{test})"
        return f"({present} AND {raw} {_SQL_OPS[op]} {self.param(text)})"

    def resource_attribute(self, c: Comparison) -> str:
        if self.resources is None:
            raise QueryError(c.pos, "resource attributes cannot be read on this store")
        ids = sorted(rid for rid, attrs in self.resources.items() if attribute_matches(attrs, c))
        if not ids:
            return "false"
        if self.t.engine == "clickhouse":
            return f"has({self.param(ids)}, s.resource_id)"
        return f"list_contains({self.param(ids)}::UBIGINT[], s.resource_id)"

    def contains(self, pattern: bytes) -> str:
        if self.t.engine == "clickhouse":
            return f"position(s.raw, {self.param(pattern)}) > 0"
        # BLOB -> VARCHAR escapes every byte outside printable ASCII (and '\') as \xNN,
        # one-to-one, and every pattern starts with an escaped byte, so a match of the
        # escaped texts is a match of the bytes.
        return f"contains(s.raw::VARCHAR, {self.param(pattern)}::BLOB::VARCHAR)"

    def raw_attribute(self, c: Comparison) -> str:
        key, op, value = c.field.name, c.op, c.value
        if value.kind == "nil":
            present = self.contains(key_prefix(key))
            return f"NOT {present}" if op == "=" else present
        if op in ("=", "!=") and value.kind in ("string", "number", "bool"):
            assert isinstance(value.value, str | int | float | bool)
            equal = (
                "(" + " OR ".join(self.contains(p) for p in equal_patterns(key, value.value)) + ")"
            )
            return equal if op == "=" else f"({self.contains(key_prefix(key))} AND NOT {equal})"
        if value.kind == "bool":
            return "false"
        if self.t.engine == "clickhouse":
            text, number = self.clickhouse_raw_value(key)
            if value.kind == "string":
                return self.text_test(text, op, value)
            return self.number_test(number, op, value)
        present = self.contains(key_prefix(key))
        function = NUMBER_FUNCTION if value.kind == "number" else TEXT_FUNCTION
        extracted = f"(CASE WHEN {present} THEN {function}(s.raw, {self.param(key)}) END)"
        if value.kind == "string":
            return self.text_test(extracted, op, value)
        return self.number_test(extracted, op, value)

    def clickhouse_raw_value(self, key: str) -> tuple[str, str]:
        """(text, number) expressions of the span attribute ``key`` read out of ``raw`` by
        byte arithmetic (ClickHouse strings are bytes): after the key's bytes come the
        AnyValue's length (a varint, 1-2 bytes: values under 16 kB), its tag, then a
        string (length varint, bytes), an int (varint) or a double (8 bytes). NULL when
        the key is absent or the value of another type. Aliases are per condition."""
        self.count += 1
        a = f"_a{self.count}"
        needle = key_prefix(key)
        at = f"(position(s.raw, {self.param(needle)}) AS {a}p)"
        start = f"({a}p + {self.param(len(needle))} AS {a}q)"

        def byte(position: str) -> str:
            return f"reinterpretAsUInt8(substring(s.raw, {position}, 1))"

        tag_at = f"({start} + if({byte(a + 'q')} < 128, 1, 2) AS {a}t)"
        tag = f"({byte(tag_at)} AS {a}g)"
        first = f"({byte(a + 't + 1')} AS {a}s)"
        length = f"if({first} < 128, {a}s, ({a}s - 128) + 128 * {byte(a + 't + 2')})"
        text = (
            f"if({at} > 0 AND {tag} = 10, "
            f"substring(s.raw, {a}t + if({a}s < 128, 2, 3), {length}), NULL)"
        )
        varint_bytes = (
            f"(arrayMap(i -> reinterpretAsUInt8(substring(s.raw, {a}t + 1 + i, 1)), range(10)) "
            f"AS {a}b)"
        )
        varint = (
            f"toFloat64(toInt64(arraySum(arrayMap((x, i) -> if(i < arrayFirstIndex(y -> y < 128, "
            f"{a}b), bitShiftLeft(toUInt64(bitAnd(x, 127)), 7 * i), toUInt64(0)), "
            f"{varint_bytes}, range(10)))))"
        )
        number = (
            f"multiIf({a}p = 0, NULL, {a}g = 24, {varint}, "
            f"{a}g = 33, reinterpretAsFloat64(substring(s.raw, {a}t + 1, 8)), NULL)"
        )
        # The number reads the aliases the text defines: evaluate both in one condition.
        return text, f"if(isNull({text}) OR true, {number}, NULL)"

    # ------------------------------------------------------------------ spansets
    def spanset(self, node: SpansetExpr) -> str:
        if isinstance(node, SpansetFilter):
            return self.filter(node)
        if isinstance(node, SpansetOp):
            names = [self.spanset(o) for o in node.operands]
            if node.op == "||":
                body = " UNION DISTINCT ".join(
                    f"SELECT tid, sid, pid, dur, st FROM {n}" for n in names
                )
            else:
                parts = []
                for name in names:
                    others = " AND ".join(
                        f"tid IN (SELECT tid FROM {o})" for o in names if o != name
                    )
                    parts.append(f"SELECT tid, sid, pid, dur, st FROM {name} WHERE {others}")
                body = " UNION DISTINCT ".join(parts)
            return self.cte("u", body)
        assert isinstance(node, Structural)
        left = self.spanset(node.first)
        for op, right_node in node.steps:
            right = self.spanset(right_node)
            left = self.structural(op, left, right)
        return left

    def filter(self, node: SpansetFilter) -> str:
        self.needs_traces = False
        condition = "true" if node.condition is None else self.condition(node.condition)
        join = ""
        if self.needs_traces:
            join = f" JOIN {self.traces()} AS tr ON tr.tid = {self.col('tid')}"
        ids = f"{self.col('sid')} AS sid, {self.col('pid')} AS pid, " if self.out.span_ids else ""
        body = (
            f"SELECT {self.col('tid')} AS tid, {ids}"
            f"{self.col('dur')} AS dur, {self.col('start')} AS st "
            f"FROM {self.t.table} AS s{join} WHERE {self.range_where()} AND {condition}"
        )
        self.last_where = None if join else condition
        return self.cte("f", body)

    def traces(self) -> str:
        """Per-trace facts over the range (trace:duration, trace:root*), once."""
        for name, _ in self.out.ctes:
            if name.startswith("tr"):
                return name
        body = (
            f"SELECT {self.col('tid')} AS tid, "
            f"max({self.col('start')} + {self.col('dur')}) - min({self.col('start')}) AS dur, "
            f"{self.arg_min(self.col('service'), self.root_key())} AS root_service, "
            f"{self.arg_min(self.col('name'), self.root_key())} AS root_name "
            f"FROM {self.t.table} AS s WHERE {self.range_where()} GROUP BY {self.col('tid')}"
        )
        return self.cte("tr", body)

    def member(self, pairs: Sequence[tuple[str, str]], table: str, extra: str = "") -> str:
        """Does ``table`` hold a row whose columns equal these (``r`` column, its column)?
        DuckDB: a correlated EXISTS, which it plans as a hash semi-join (a tuple IN over
        nullable parent ids became a nested loop: 158 s for a whole-store ``!<``).
        ClickHouse: a tuple IN (its correlated subqueries are experimental)."""
        if self.t.engine == "duckdb":
            on = " AND ".join(f"m.{theirs} = {ours}" for ours, theirs in pairs)
            return f"EXISTS (SELECT 1 FROM {table} AS m WHERE {on}{extra})"
        ours = ", ".join(o for o, _ in pairs)
        theirs = ", ".join(t for _, t in pairs)
        return f"coalesce(({ours}) IN (SELECT {theirs} FROM {table}), false)"

    def structural(self, op: str, left: str, right: str) -> str:
        negate = op.startswith("!")
        base = op.lstrip("!")
        columns = "r.tid, r.sid, r.pid, r.dur, r.st"
        if base == ">":
            test = self.member([("r.tid", "tid"), ("r.pid", "sid")], left)
        elif base == "<":
            test = self.member([("r.tid", "tid"), ("r.sid", "pid")], left)
        elif base == "~":
            if self.t.engine == "duckdb":
                test = self.member(
                    [("r.tid", "tid"), ("r.pid", "pid")], left, " AND m.sid <> r.sid"
                )
            else:
                siblings = self.cte(
                    "sib",
                    f"SELECT r.tid AS tid, r.sid AS sid FROM {right} AS r JOIN {left} AS l "
                    "ON l.tid = r.tid AND l.pid = r.pid WHERE l.sid <> r.sid",
                )
                test = self.member([("r.tid", "tid"), ("r.sid", "sid")], siblings)
        else:
            walked = self.walk(base, left, right)
            test = self.member([("r.tid", "tid"), ("r.sid", "sid")], walked)
        if negate:
            test = f"NOT {test}"
        return self.cte("x", f"SELECT {columns} FROM {right} AS r WHERE {test}")

    def walk(self, direction: str, left: str, right: str) -> str:
        """Descendants (``>>``) or ancestors (``<<``) of the left spans, over the narrow
        (trace, span, parent) rows of the traces that hold both sides."""
        self.out.recursive = True
        edges = self.cte(
            "e",
            f"SELECT {self.col('tid')} AS tid, {self.col('sid')} AS sid, {self.col('pid')} AS pid "
            f"FROM {self.t.table} AS s WHERE {self.range_where()} "
            f"AND {self.col('tid')} IN (SELECT tid FROM {left}) "
            f"AND {self.col('tid')} IN (SELECT tid FROM {right})",
        )
        name = f"w{len(self.out.ctes)}"
        if direction == ">>":
            body = (
                f"SELECT e.tid AS tid, e.sid AS sid, e.pid AS pid, 1 AS depth FROM {edges} AS e "
                f"WHERE (e.tid, e.pid) IN (SELECT tid, sid FROM {left}) "
                f"UNION ALL SELECT e.tid, e.sid, e.pid, w.depth + 1 FROM {edges} AS e "
                f"JOIN {name} AS w ON e.tid = w.tid AND e.pid = w.sid "
                f"WHERE w.depth < {MAX_TREE_DEPTH}"
            )
        else:
            body = (
                f"SELECT e.tid AS tid, e.sid AS sid, e.pid AS pid, 1 AS depth FROM {edges} AS e "
                f"WHERE (e.tid, e.sid) IN (SELECT tid, pid FROM {left}) "
                f"UNION ALL SELECT e.tid, e.sid, e.pid, w.depth + 1 FROM {edges} AS e "
                f"JOIN {name} AS w ON e.tid = w.tid AND e.sid = w.pid "
                f"WHERE w.depth < {MAX_TREE_DEPTH}"
            )
        self.out.ctes.append((name, body))
        return name

    def pipeline(self, current: str, stage: Aggregate) -> str:
        function = {"count": "count(*)", "avg": "avg(dur)", "max": "max(dur)", "min": "min(dur)"}[
            stage.func
        ]
        having = f"{function} {_SQL_OPS[stage.op]} {self.param(stage.value.value)}"
        return self.cte(
            "p",
            f"SELECT {self.columns} FROM {current} "
            f"WHERE tid IN (SELECT tid FROM {current} GROUP BY tid HAVING {having})",
        )

    def compile(self, query: Query, span_ids: bool) -> Compiled:
        single = isinstance(query.spansets, SpansetFilter)
        self.out.span_ids = span_ids or not single
        if not self.out.span_ids:
            self.columns = "tid, dur, st"
        self.last_where = None
        current = self.spanset(query.spansets)
        for stage in query.pipeline:
            current = self.pipeline(current, stage)
        if single and not query.pipeline:
            self.out.simple_where = self.last_where
        # One row per span: a plain filter's rows are distinct spans already.
        distinct = "DISTINCT " if not single else ""
        self.out.ctes.append(("result", f"SELECT {distinct}{self.columns} FROM {current}"))
        return self.out


def compile_query(
    query: Query,
    target: Target,
    start_unix_nano: int,
    end_unix_nano: int,
    resources: Resources | None = None,
    span_ids: bool = False,
) -> Compiled:
    """The CTEs that compute ``result(tid, [sid, pid,] dur, st)``: the query's spans
    starting in [start, end); ``span_ids`` asks for the id columns whatever the query."""
    return _Compiler(target, resources, start_unix_nano, end_unix_nano).compile(query, span_ids)


# --------------------------------------------------------------------------- statements


def trace_ids_sql(compiled: Compiled) -> str:
    c = _Compiler(compiled.target, None, 0, 0)
    return f"{compiled.with_clause()}\nSELECT DISTINCT {c.hex_tid('tid')} AS trace_id FROM result"


def find_sql(compiled: Compiled, limit: int) -> str:
    """Columns: trace_id, root_service, root_operation, start_unix_nano, duration_ns,
    matched_spans, root_error, error_spans, total. The newest ``limit`` traces by
    their first matching span, then ordered by trace start."""
    c = _Compiler(compiled.target, None, 0, 0, prefix="z")
    compiled.params["limit"] = max(1, limit)
    status_error = c.status_is("error")
    compiled.params.update({k: v for k, v in c.out.params.items() if k.startswith("z")})
    extra = [
        (
            "hits",
            "SELECT tid, count(*) AS matched, min(st) AS first_match FROM result GROUP BY tid",
        ),
        (
            "page",
            "SELECT tid, matched, first_match FROM hits "
            "ORDER BY first_match DESC, tid LIMIT $limit",
        ),
        (
            "summary",
            f"SELECT {c.col('tid')} AS tid, min({c.col('start')}) AS t_start, "
            f"max({c.col('start')} + {c.col('dur')}) AS t_end, "
            f"{c.arg_min(c.col('service'), c.root_key())} AS root_service, "
            f"{c.arg_min(c.col('name'), c.root_key())} AS root_name, "
            f"{c.arg_min(f'CASE WHEN {status_error} THEN 1 ELSE 0 END', c.root_key())} "
            "AS root_error, "
            f"sum(CASE WHEN {status_error} THEN 1 ELSE 0 END) AS error_spans "
            f"FROM {c.t.table} AS s WHERE {c.range_where()} "
            f"AND {c.col('start')} >= (SELECT min(first_match) FROM page) - {TRACE_MARGIN_NS} "
            f"AND {c.col('start')} <= (SELECT max(first_match) FROM page) + {TRACE_MARGIN_NS} "
            f"AND {c.col('tid')} IN (SELECT tid FROM page) GROUP BY {c.col('tid')}",
        ),
    ]
    return (
        f"{compiled.with_clause(extra)}\n"
        f"SELECT {c.hex_tid('page.tid')} AS trace_id, summary.root_service AS root_service, "
        "summary.root_name AS root_operation, summary.t_start AS start_unix_nano, "
        "summary.t_end - summary.t_start AS duration_ns, page.matched AS matched_spans, "
        "summary.root_error AS root_error, summary.error_spans AS error_spans, "
        "(SELECT count(*) FROM hits) AS total "
        "FROM page JOIN summary ON summary.tid = page.tid "
        "ORDER BY start_unix_nano DESC, trace_id"
    )


def sample_sql(compiled: Compiled, sample: int, complement: bool) -> tuple[str, str]:
    """(count statement, sample statement) of the query's spans, or with ``complement``
    of the other spans in the range. The sample is ``sample`` spans in a fixed
    pseudo-random order (a hash of the span id), so repeated runs agree."""
    c = _Compiler(compiled.target, None, 0, 0)
    compiled.params["sample"] = sample
    if compiled.simple_where is not None:  # test the filter in place: no join, no ids
        member = compiled.simple_where
    else:
        member = (
            f"coalesce(({c.col('tid')}, {c.col('sid')}) IN (SELECT tid, sid FROM result), false)"
        )
    where = f"{c.range_where()} AND {'NOT ' if complement else ''}{member}"
    if c.t.otel:
        columns = (
            "s.SpanName AS name, upper(replaceRegexpOne(toString(s.SpanKind), '^SPAN_KIND_', '')) "
            "AS kind, s.ServiceName AS service_name, toInt64(s.Duration) AS duration_ns, "
            "s.SpanAttributes AS span_attributes, s.ResourceAttributes AS resource_attributes"
        )
        order = "cityHash64(s.TraceId, s.SpanId)"
    else:
        columns = (
            "s.name AS name, s.kind AS kind, s.service_name AS service_name, "
            "s.duration_ns AS duration_ns, s.raw AS raw, s.resource_id AS resource_id"
        )
        order = "cityHash64(s.span_id)" if c.t.engine == "clickhouse" else "hash(s.span_id)"
    with_clause = "" if compiled.simple_where is not None else compiled.with_clause()
    count = f"{with_clause}\nSELECT count(*) AS spans FROM {c.t.table} AS s WHERE {where}"
    rows = (
        f"{with_clause}\nSELECT {columns} FROM {c.t.table} AS s WHERE {where} "
        f"ORDER BY {order} LIMIT $sample"
    )
    return count, rows


# --------------------------------------------------------------------------- Python side


def attribute_matches(attributes: Mapping[str, Any], c: Comparison) -> bool:
    """One attribute comparison on a dict of attributes, with the SQL's rules: absent
    keys match only ``= nil``/``!= nil`` tests (``!=`` means present and different);
    values compare within their type (strings with strings, numbers with numbers)."""
    key, op, value = c.field.name, c.op, c.value
    present = key in attributes and attributes[key] is not None
    if value.kind == "nil":
        return not present if op == "=" else present
    if not present:
        return False
    actual = attributes[key]
    same = _comparable(actual, value)
    if op == "!=":
        return not (same and actual == value.value)
    if not same:
        return False
    if op == "=":
        return bool(actual == value.value)
    if op in ("=~", "!~"):
        matched = re.fullmatch(str(value.value), str(actual)) is not None
        return matched if op == "=~" else not matched
    compare: Callable[[Any, Any], bool] = {
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
    }[op]
    return compare(actual, value.value)


def _comparable(actual: Any, value: Value) -> bool:
    if value.kind == "string":
        return isinstance(actual, str)
    if value.kind == "bool":
        return isinstance(actual, bool)
    if value.kind == "number":
        return isinstance(actual, int | float) and not isinstance(actual, bool)
    return False

"""Property: over random span trees, the compiled SQL selects exactly the spans a small
reference evaluator (below, straight from SPEC's definitions) selects."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from spanstore.duckdb_store import DuckDBStore
from spanstore.query import compile_query, parse

WINDOW = 10**12
_windows = itertools.count(1)


@dataclass
class RefSpan:
    trace: str
    span: str
    parent: str | None
    name: str
    status: int
    kind: int
    duration_ms: int
    attrs: dict[str, Any] = field(default_factory=dict)
    env: str = "prod"


# --------------------------------------------------------------------------- reference


LEAVES: dict[str, Any] = {
    'name = "a"': lambda s: s.name == "a",
    'name =~ "a|b"': lambda s: re.fullmatch("a|b", s.name) is not None,
    "status = error": lambda s: s.status == 2,
    "status != ok": lambda s: s.status != 1,
    "kind = server": lambda s: s.kind == 2,
    "duration > 100ms": lambda s: s.duration_ms > 100,
    'span.k1 = "x"': lambda s: s.attrs.get("k1") == "x",
    'span.k1 != "x"': lambda s: "k1" in s.attrs and s.attrs["k1"] != "x",
    "span.k1 = nil": lambda s: "k1" not in s.attrs,
    "span.k2 = 2": lambda s: s.attrs.get("k2") == 2,
    "span.k2 > 1": lambda s: "k2" in s.attrs and s.attrs["k2"] > 1,
    'span.k1 =~ "x|z"': lambda s: s.attrs.get("k1") in ("x", "z"),
    'resource.env = "prod"': lambda s: s.env == "prod",
    '.k1 = "y"': lambda s: s.attrs.get("k1") == "y",
}

conditions = st.recursive(
    st.sampled_from(sorted(LEAVES)).map(lambda t: (t, LEAVES[t])),
    lambda inner: st.one_of(
        st.tuples(inner, inner).map(
            lambda ab: (
                f"({ab[0][0]} && {ab[1][0]})",
                lambda s, a=ab[0][1], b=ab[1][1]: a(s) and b(s),
            )
        ),
        st.tuples(inner, inner).map(
            lambda ab: (
                f"({ab[0][0]} || {ab[1][0]})",
                lambda s, a=ab[0][1], b=ab[1][1]: a(s) or b(s),
            )
        ),
        inner.map(lambda a: (f"!({a[0]})", lambda s, f=a[1]: not f(s))),
    ),
    max_leaves=4,
)


def related(op: str, left: set[int], right: RefSpan, spans: list[RefSpan], index: int) -> bool:
    """Is some left span (indexes into ``spans``) in relation ``op`` to ``right``?"""
    by_id = {s.span: i for i, s in enumerate(spans) if s.trace == right.trace}
    lefts = [spans[i] for i in left if spans[i].trace == right.trace]

    def ancestors(span: RefSpan) -> set[str]:
        out: set[str] = set()
        current = span.parent
        while current is not None and current in by_id and current not in out:
            out.add(current)
            current = spans[by_id[current]].parent
        return out

    if op == ">":
        return any(right.parent == x.span for x in lefts)
    if op == "<":
        return any(x.parent == right.span for x in lefts)
    if op == "~":
        return any(
            x.parent is not None and x.parent == right.parent and x.span != right.span
            for x in lefts
        )
    if op == ">>":
        return any(x.span in ancestors(right) for x in lefts)
    assert op == "<<"
    return any(right.span in ancestors(x) for x in lefts)


def evaluate(
    shape: str, a: Any, b: Any, op: str, count: int | None, spans: list[RefSpan]
) -> set[tuple[str, str]]:
    left = {i for i, s in enumerate(spans) if a(s)}
    right = {i for i, s in enumerate(spans) if b(s)}
    if shape == "single":
        chosen = left
    elif shape == "and":
        traces_l = {spans[i].trace for i in left}
        traces_r = {spans[i].trace for i in right}
        both = traces_l & traces_r
        chosen = {i for i in left | right if spans[i].trace in both}
    elif shape == "or":
        chosen = left | right
    else:
        negate = op.startswith("!")
        base = op.lstrip("!")
        chosen = {i for i in right if related(base, left, spans[i], spans, i) != negate}
    if count is not None:
        per_trace: dict[str, int] = {}
        for i in chosen:
            per_trace[spans[i].trace] = per_trace.get(spans[i].trace, 0) + 1
        chosen = {i for i in chosen if per_trace[spans[i].trace] > count}
    return {(spans[i].trace, spans[i].span) for i in chosen}


# --------------------------------------------------------------------------- data


@st.composite
def forests(draw: Any) -> list[RefSpan]:
    spans: list[RefSpan] = []
    for t in range(draw(st.integers(1, 3))):
        trace = f"{draw(st.integers(1, 2**60)):032x}"
        count = draw(st.integers(1, 7))
        ids: list[str] = []
        for n in range(count):
            span = f"{t + 1:02x}{n + 1:014x}"
            parent = None if n == 0 else ids[draw(st.integers(0, n - 1))]
            attrs: dict[str, Any] = {}
            k1 = draw(st.sampled_from([None, "x", "y", "z"]))
            if k1 is not None:
                attrs["k1"] = k1
            k2 = draw(st.sampled_from([None, 1, 2, 3]))
            if k2 is not None:
                attrs["k2"] = k2
            spans.append(
                RefSpan(
                    trace=trace,
                    span=span,
                    parent=parent,
                    name=draw(st.sampled_from(["a", "b", "c"])),
                    status=draw(st.integers(0, 2)),
                    kind=draw(st.integers(1, 5)),
                    duration_ms=draw(st.integers(1, 200)),
                    attrs=attrs,
                    env=draw(st.sampled_from(["prod", "dev"])),
                )
            )
            ids.append(span)
    return spans


def request_of(spans: list[RefSpan], t0: int) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    for env in ("prod", "dev"):
        resource_spans = request.resource_spans.add()
        for key, value in (("service.name", f"svc-{env}"), ("env", env)):
            kv = resource_spans.resource.attributes.add()
            kv.key, kv.value.string_value = key, value
        scope = resource_spans.scope_spans.add()
        for i, s in enumerate(x for x in spans if x.env == env):
            span = scope.spans.add()
            span.trace_id = bytes.fromhex(s.trace)
            span.span_id = bytes.fromhex(s.span)
            if s.parent:
                span.parent_span_id = bytes.fromhex(s.parent)
            span.name, span.kind = s.name, s.kind
            span.status.code = s.status
            span.start_time_unix_nano = t0 + 1_000_000 * (i + 1)
            span.end_time_unix_nano = span.start_time_unix_nano + s.duration_ms * 1_000_000
            for key, value in s.attrs.items():
                kv = span.attributes.add()
                kv.key = key
                if isinstance(value, int):
                    kv.value.int_value = value
                else:
                    kv.value.string_value = value
    return request


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBStore]:
    duck = DuckDBStore(tmp_path_factory.mktemp("props") / "props.duckdb")
    yield duck
    duck.close()


OPS = [">>", ">", "<<", "<", "~", "!>>", "!>", "!<<", "!<", "!~"]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    spans=forests(),
    a=conditions,
    b=conditions,
    shape=st.sampled_from(["single", "and", "or", "structural"]),
    op=st.sampled_from(OPS),
    count=st.sampled_from([None, 0, 1, 2]),
)
def test_sql_agrees_with_reference(
    store: DuckDBStore, spans: list[RefSpan], a: Any, b: Any, shape: str, op: str, count: int | None
) -> None:
    window = next(_windows)
    t0 = window * WINDOW
    # Each example's traces get ids of their own: the store keeps one copy of a span id
    # pair (a re-sent span), so ids reused by another example would read as that one's.
    spans = [replace(s, trace=f"{window:08x}{s.trace[8:]}") for s in spans]
    store.write(request_of(spans, t0))
    text = {
        "single": f"{{ {a[0]} }}",
        "and": f"{{ {a[0]} }} && {{ {b[0]} }}",
        "or": f"{{ {a[0]} }} || {{ {b[0]} }}",
        "structural": f"{{ {a[0]} }} {op} {{ {b[0]} }}",
    }[shape] + ("" if count is None else f" | count() > {count}")
    backend = store.query_backend()
    compiled = compile_query(
        parse(text), backend.target, t0, t0 + WINDOW, backend.resources(), span_ids=True
    )
    rows = backend.run(
        compiled.with_clause() + "\nSELECT lower(hex(tid)) AS t, lower(hex(sid)) AS s FROM result",
        compiled.params,
    )
    got = {(r["t"], r["s"]) for r in rows}
    assert got == evaluate(shape, a[1], b[1], op, count, spans), text

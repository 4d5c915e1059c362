"""Hostile queries: quotes, backslashes, SQL fragments, deep nesting, 100 kB. None of the
user's text reaches SQL as text; errors are one line naming a position."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from test_clickhouse import load_samples

from spanstore.duckdb_store import DuckDBStore
from spanstore.query import QueryError, compile_query, parse
from spanstore.query.compiler import CLICKHOUSE, DUCKDB

EVERYTHING = (0, 1 << 62)
HOSTILE_VALUES = [
    "'; DROP TABLE spans; --",
    'a\\"b',
    "\\\\",
    "x' OR '1'='1",
    "$lo",
    "@table",
    "Robert'); SELECT * FROM seqtrace_meta; --",
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBStore]:
    duck = DuckDBStore(tmp_path_factory.mktemp("hostile") / "samples.duckdb")
    load_samples(duck.write)
    yield duck
    duck.close()


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_values_are_parameters_never_sql(store: DuckDBStore, value: str) -> None:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    text = (
        f'{{ name = "{escaped}" || span.k = "{escaped}" || resource.x = "{escaped}" '
        f'|| .order.id = "{escaped}" }}'
    )
    query = parse(text)
    for target in (DUCKDB, CLICKHOUSE):
        compiled = compile_query(query, target, *EVERYTHING, resources={})
        sql = compiled.with_clause()
        if not value.startswith(("$", "@")):  # those two are the SQL's own placeholders
            assert value not in sql and escaped not in sql
        assert "DROP" not in sql and "Robert" not in sql
        texts = [v for v in compiled.params.values() if isinstance(v, str | bytes)]
        assert any((value.encode() if isinstance(t, bytes) else value) == t for t in texts)
    total, _ = store.find_traces(query, *EVERYTHING, 10)
    assert total == 0
    assert store.stats().spans == 500  # nothing was dropped


def test_hostile_attribute_names_are_parameters() -> None:
    query = parse('{ span."a\'b; DROP" = 1 && resource."x`y" = nil }')
    compiled = compile_query(query, CLICKHOUSE, *EVERYTHING, resources={})
    assert "DROP" not in compiled.with_clause()


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("(" * 40 + '{ name = "a" }' + ")" * 40, 33),
        ("{ " + "!" * 40 + 'name = "a" }', 34),
        ("{ " + "(" * 40 + 'name = "a"' + ")" * 40 + " }", 34),
    ],
)
def test_deep_nesting_is_refused_clearly(text: str, position: int) -> None:
    with pytest.raises(QueryError) as info:
        parse(text)
    message = str(info.value)
    assert message == f"query error at position {position}: the query nests deeper than 32 levels"
    assert "\n" not in message


def test_a_100kb_string_is_one_parameter(store: DuckDBStore) -> None:
    long_value = "x" * 100_000
    query = parse(f'{{ name = "{long_value}" }}')
    assert store.find_traces(query, *EVERYTHING, 10) == (0, [])


def test_a_100kb_query_of_many_conditions_is_refused_in_one_line() -> None:
    text = "{ " + " || ".join(f'name = "n{i}"' for i in range(8000)) + " }"
    assert len(text) > 100_000
    with pytest.raises(
        QueryError, match=r"^query error at position \d+: the query has more than 256 comparisons$"
    ):
        parse(text)


def test_wide_but_allowed_query_runs(store: DuckDBStore) -> None:
    text = "{ " + " || ".join(f'name = "n{i}"' for i in range(255)) + ' || name = "charge card" }'
    total, _ = store.find_traces(parse(text), *EVERYTHING, 10)
    assert total == 11


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{ duration > "2s" }',
            "position 14: expected a duration (300ms, 2s) to compare duration with, found a string",
        ),
        ("{ foo = 1 }", "position 3: unknown intrinsic 'foo'"),
        ("{ status = 2 }", "position 12: expected status = or != ok, error or unset"),
        (
            '{ name = "a" ',
            "position 14: expected '}', '&&', '||' or a comparison operator, "
            "found the end of the query",
        ),
        ('{ name = "a } ', "position 10: a string is not closed"),
        ('{ name =~ "(" }', "position 11: invalid regular expression"),
        ("{ } | count() > 1.5", "position 17: expected a whole number after count()"),
        ("{ } >>", "position 7: expected '{' starting a spanset filter"),
        ("", "position 1: expected a spanset filter"),
    ],
)
def test_errors_name_the_position(text: str, message: str) -> None:
    with pytest.raises(QueryError) as info:
        parse(text)
    assert message in str(info.value)
    assert "\n" not in str(info.value)

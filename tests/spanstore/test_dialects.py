"""Every query the one reader runs exists in every dialect, and every SQL file is used.

The reader (spanstore/reader.py) runs queries by name; each dialect answers them from its
folder: spanstore/sql/duckdb/NAME.sql, spanstore/sql/clickhouse/NAME.sql, and
spanstore/sql/clickhouse/otel_NAME.sql for the OpenTelemetry exporter's table.
"""

from __future__ import annotations

import re

from spanstore.dialect import parameter_names, query_names, sql_text
from tests.conftest import ROOT

#: The reader's queries. Adding one: a file per dialect folder, a method in
#: spanstore/reader.py that maps its rows, and its name here.
READER_QUERIES = {
    "entity_keys",
    "entity_trace_ids",
    "entity_traces_in_range",
    "entity_values",
    "failure_candidates",
    "failure_parts",
    "failure_parts_of",
    "failure_traces",
    "flow_root_operations",
    "flow_root_shapes",
    "flow_trace_shapes",
    "last_span_end",
    "linked_trace_ids",
    "query_resources",
    "recent_traces",
    "refs_by_id",
    "replay_range_traces",
    "replay_trace_extents",
    "replay_traces_rows",
    "service_map",
    "services",
    "slo_spans",
    "span_frame",
    "spans_of_traces",
    "stats",
    "throughput",
    "trace_entities",
    "trace_entities_in_range",
    "trace_ids_by_prefix",
    "trace_ids_starting_in",
    "trace_rows",
    "traces_frame",
    "traces_frame_since",
}
#: What the otel_traces layout does without: spans are columns there, not protobuf with
#: resource and scope ids (no refs_by_id, trace_rows), and the reader composes
#: entity_traces_in_range from other queries when a dialect lacks it.
NOT_IN_OTEL = {
    "entity_traces_in_range",
    "refs_by_id",
    "trace_rows",
    "query_resources",  # the query language reads otel_traces' attribute maps in SQL
    # `seqtrace replay` re-sends stored protobuf; on otel_traces it rebuilds each trace
    # (replay_trace_extents / replay_requests fall back to spans and trace_request) and
    # cannot list a range's traces.
    "replay_range_traces",
    "replay_trace_extents",
    "replay_traces_rows",
}
#: Flows (#16): DuckDB fingerprints traces in SQL; on ClickHouse (both layouts) the reader
#: answers None and analyzer.flow folds span objects from spans_of_traces / span_frame.
NOT_IN_CLICKHOUSE = {
    "flow_root_operations",
    "flow_root_shapes",
    "flow_trace_shapes",
    # The failure report's counts kept between reports (#20): only a store whose row ids
    # say what was committed since (DuckDB's, in its own process) can bring them up to
    # date; elsewhere the reader answers None and failure_candidates counts every time.
    "failure_parts",
    "failure_parts_of",
    "failure_traces",
    "trace_ids_starting_in",
    "traces_frame_since",  # row ids, as failure_parts
}
#: Log record reads (#18, spanstore/log_reader.py): every dialect, seqtrace's tables and
#: the exporter's otel_logs (read beside otel_traces).
LOG_QUERIES = {"logs_of_traces", "logs_in_range", "log_stats"}


def _names_in(path: str, pattern: str) -> set[str]:
    return set(re.findall(pattern, (ROOT / path).read_text()))


def test_the_reader_runs_exactly_the_pinned_queries() -> None:
    used = _names_in("spanstore/reader.py", r'(?:_table|_id_tables|has_query)\(\s*"([a-z_0-9]+)"')
    assert used == READER_QUERIES


def test_every_reader_query_exists_in_every_dialect() -> None:
    duckdb, clickhouse = query_names("duckdb"), query_names("clickhouse")
    assert duckdb >= READER_QUERIES, READER_QUERIES - duckdb
    wanted = READER_QUERIES - NOT_IN_CLICKHOUSE
    assert clickhouse >= wanted, wanted - clickhouse
    otel = {name.removeprefix("otel_") for name in clickhouse if name.startswith("otel_")}
    assert otel >= wanted - NOT_IN_OTEL, wanted - NOT_IN_OTEL - otel
    assert not NOT_IN_OTEL & otel


def test_dialects_of_one_query_take_the_same_parameters() -> None:
    """A query's files use only parameters the reader passes for it: the names of one
    query agree across dialects (``$lo``/``$hi`` or ``$margin`` spell one widening)."""
    reader = (ROOT / "spanstore" / "reader.py").read_text()
    passed = set(re.findall(r'"([a-z_]+)":', reader)) | {"trace_ids", "lo", "hi"}
    passed.add("keys")  # the otel dialect's entity keys (OtelDialect.entity_key_names)
    for name in READER_QUERIES:
        for folder, file in (
            ("duckdb", name),
            ("clickhouse", name),
            ("clickhouse", f"otel_{name}"),
        ):
            if file in query_names(folder):
                extra = parameter_names(sql_text(folder, file)) - passed
                assert not extra, f"{folder}/{file}.sql uses {extra}"


def test_every_sql_file_is_used() -> None:
    from spanstore.duckdb_store import _MIGRATIONS

    duckdb_own = _names_in("spanstore/duckdb_store.py", r'sql\(\s*"([a-z_0-9]+)"')
    # the writer's upkeep of the kept trace shapes, given the store's ``sql``
    duckdb_own |= _names_in("spanstore/trace_shapes.py", r'_sql\(\s*"([a-z_0-9]+)"')
    duckdb_own |= set(_MIGRATIONS.values())  # run by name when an older file is opened
    log_reads = _names_in(
        "spanstore/log_reader.py", r'(?:_table|_id_tables|_answers)\(\s*"([a-z_0-9]+)"'
    )
    assert log_reads - {"refs_by_id"} == LOG_QUERIES
    duckdb_fragments = {  # @name in another file: that file's text in place
        name
        for file in query_names("duckdb")
        for name in re.findall(r"@([a-z_]+)", sql_text("duckdb", file))
    }
    assert duckdb_fragments <= query_names("duckdb"), duckdb_fragments - query_names("duckdb")
    used = READER_QUERIES | duckdb_own | LOG_QUERIES | duckdb_fragments
    assert query_names("duckdb") == used, query_names("duckdb") ^ used

    store = {  # the store's own statements, and the otel dialect's (named without prefix)
        name if name in query_names("clickhouse") else f"otel_{name}"
        for name in _names_in("spanstore/clickhouse_store.py", r'(?:sql|rows)\(\s*"([a-z_0-9]+)"')
    }
    fragments = {  # @name in another file: that query rendered in place
        name
        for file in query_names("clickhouse")
        for name in re.findall(r"@([a-z_]+)", sql_text("clickhouse", file))
        if name in query_names("clickhouse")
    }
    wanted = READER_QUERIES - NOT_IN_CLICKHOUSE
    reader = wanted | {f"otel_{name}" for name in wanted - NOT_IN_OTEL}
    reader |= LOG_QUERIES | {f"otel_{name}" for name in LOG_QUERIES}
    used = reader | store | fragments
    assert query_names("clickhouse") == used, query_names("clickhouse") ^ used


def test_every_dialect_has_the_log_queries_with_the_same_parameters() -> None:
    log_reader = (ROOT / "spanstore" / "log_reader.py").read_text()
    passed = set(re.findall(r'"([a-z_]+)":', log_reader)) | {"trace_ids", "lo", "hi"}
    for name in LOG_QUERIES:
        for folder, file in (
            ("duckdb", name),
            ("clickhouse", name),
            ("clickhouse", f"otel_{name}"),
        ):
            assert file in query_names(folder), f"{folder}/{file}.sql"
            extra = parameter_names(sql_text(folder, file)) - passed
            assert not extra, f"{folder}/{file}.sql uses {extra}"

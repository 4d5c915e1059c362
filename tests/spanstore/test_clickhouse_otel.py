"""Reading the OpenTelemetry Collector contrib ``clickhouseexporter``'s ``otel_traces``.

The tables are created from the exporter's own DDL, as it renders it (``fmt.Sprintf`` of
its templates: table name, cluster clause, engine, TTL), for two versions:

* ``current`` — ``exporter/clickhouseexporter/internal/sql_templates/traces_table.sql``,
  ``traces_id_ts_lookup_table.sql`` and ``traces_id_ts_lookup_mv.sql`` (collector-contrib,
  Apache-2.0), with ScopeName/ScopeVersion columns and ``Duration UInt64``;
* ``v0.9x`` — the DDL that ``exporter_traces.go`` embedded before the templates moved to
  files: no Scope columns (the scope went into SpanAttributes as ``otel.scope.name``) and
  ``Duration Int64``.

Rows are what the exporter writes for the sample traces (``otel_rows``: attribute values
as ``AsString()``, hex ids, enum names in either spelling). Read back, they are the
original spans with string attribute values, and the analyzer's reports and diagrams
match the DuckDB store's on the same traces.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_clickhouse import BACKENDS, SAMPLES, StoreMaker, ch, require_chdb  # noqa: F401
from test_clickhouse_parity import _slo_spec, assert_same_keys

from analyzer.failures_store import store_failure_report
from analyzer.source import LocalSource
from collector.files import read_trace_file
from spanstore.base import StoreError
from spanstore.clickhouse_store import ClickHouseStore, _as_string, arrow_stream, otel_rows
from spanstore.duckdb_store import DuckDBStore
from spanstore.model import Span, SpanEvent, SpanLink
from spanstore.otlp import spans_from_request

# ----------------------------------------------------------------- the exporter's DDL
# Verbatim from open-telemetry/opentelemetry-collector-contrib (Apache-2.0),
# exporter/clickhouseexporter/internal/sql_templates/traces_table.sql. Placeholders, in
# order: table name, ON CLUSTER clause, engine, TTL clause.
TRACES_TABLE_SQL = """CREATE TABLE IF NOT EXISTS %s %s (
                                     Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    TraceState String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Duration UInt64 CODEC(ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    StatusMessage String CODEC(ZSTD(1)),
    Events Nested (
                      Timestamp DateTime64(9),
    Name LowCardinality(String),
    Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    Links Nested (
                     TraceId String,
                     SpanId String,
                     TraceState String,
                     Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1
    ) ENGINE = %s
    PARTITION BY toDate(Timestamp)
    ORDER BY (ServiceName, SpanName, toDateTime(Timestamp))
    %s
    SETTINGS index_granularity=8192, ttl_only_drop_parts = 1
"""
# .../sql_templates/traces_id_ts_lookup_table.sql: table, cluster, engine, TTL.
TRACES_ID_TS_LOOKUP_TABLE_SQL = """CREATE TABLE IF NOT EXISTS %s_trace_id_ts %s (
                                                 TraceId String CODEC(ZSTD(1)),
    Start DateTime CODEC(Delta, ZSTD(1)),
    End DateTime CODEC(Delta, ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.01) GRANULARITY 1
    ) ENGINE = %s
    PARTITION BY toDate(Start)
    ORDER BY (TraceId, Start)
    %s
    SETTINGS index_granularity=8192, ttl_only_drop_parts = 1"""
# .../sql_templates/traces_id_ts_lookup_mv.sql: table, cluster, database, table,
# database, table.
TRACES_ID_TS_LOOKUP_MV_SQL = """CREATE MATERIALIZED VIEW IF NOT EXISTS %s_trace_id_ts_mv %s
TO %s.%s_trace_id_ts
AS SELECT
              TraceId,
              min(Timestamp) as Start,
              max(Timestamp) as End
   FROM
              %s.%s
   WHERE TraceId != ''
   GROUP BY TraceId
"""

# The same exporter's DDL before the templates moved to files (exporter_traces.go:
# createTracesTableSQL, createTraceIDTsTableSQL, createTraceIDTsMaterializedViewSQL).
OLD_TRACES_TABLE_SQL = """
CREATE TABLE IF NOT EXISTS %s (
     Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
     TraceId String CODEC(ZSTD(1)),
     SpanId String CODEC(ZSTD(1)),
     ParentSpanId String CODEC(ZSTD(1)),
     TraceState String CODEC(ZSTD(1)),
     SpanName LowCardinality(String) CODEC(ZSTD(1)),
     SpanKind LowCardinality(String) CODEC(ZSTD(1)),
     ServiceName LowCardinality(String) CODEC(ZSTD(1)),
     ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
     SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
     Duration Int64 CODEC(ZSTD(1)),
     StatusCode LowCardinality(String) CODEC(ZSTD(1)),
     StatusMessage String CODEC(ZSTD(1)),
     Events Nested (
         Timestamp DateTime64(9),
         Name LowCardinality(String),
         Attributes Map(LowCardinality(String), String)
     ) CODEC(ZSTD(1)),
     Links Nested (
         TraceId String,
         SpanId String,
         TraceState String,
         Attributes Map(LowCardinality(String), String)
     ) CODEC(ZSTD(1)),
     INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
     INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
     INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
     INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
     INDEX idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
     INDEX idx_duration Duration TYPE minmax GRANULARITY 1
) ENGINE MergeTree()
%s
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, SpanName, toUnixTimestamp(Timestamp), TraceId)
SETTINGS index_granularity=8192, ttl_only_drop_parts = 1;
"""
OLD_TRACE_ID_TS_TABLE_SQL = """
create table IF NOT EXISTS %s_trace_id_ts (
     TraceId String CODEC(ZSTD(1)),
     Start DateTime64(9) CODEC(Delta, ZSTD(1)),
     End DateTime64(9) CODEC(Delta, ZSTD(1)),
     INDEX idx_trace_id TraceId TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE MergeTree()
%s
ORDER BY (TraceId, toUnixTimestamp(Start))
SETTINGS index_granularity=8192;
"""
OLD_TRACE_ID_TS_MV_SQL = """
CREATE MATERIALIZED VIEW IF NOT EXISTS %s_trace_id_ts_mv
TO %s.%s_trace_id_ts
AS SELECT
TraceId,
min(Timestamp) as Start,
max(Timestamp) as End
FROM
%s.%s
WHERE TraceId!=''
GROUP BY TraceId;
"""


def create_exporter_tables(
    maker: StoreMaker, version: str, table: str = "otel_traces", lookup: bool = True
) -> None:
    """The tables as the exporter creates them at start-up (TTL off, no cluster)."""
    db = f"`{maker.database}`"
    if version == "current":
        statements = [TRACES_TABLE_SQL % (table, "", "MergeTree()", "")]
        if lookup:
            statements += [
                TRACES_ID_TS_LOOKUP_TABLE_SQL % (table, "", "MergeTree()", ""),
                TRACES_ID_TS_LOOKUP_MV_SQL % (table, "", db, table, db, table),
            ]
    else:
        statements = [OLD_TRACES_TABLE_SQL % (table, "")]
        if lookup:
            statements += [
                OLD_TRACE_ID_TS_TABLE_SQL % (table, ""),
                OLD_TRACE_ID_TS_MV_SQL % (table, db, table, db, table),
            ]
    transport = maker.transport()  # creates the database, as the exporter does
    try:
        for statement in statements:
            transport.command(statement.strip().rstrip(";"))
    finally:
        transport.close()


def sample_spans() -> list[Span]:
    return [
        span
        for file in sorted(SAMPLES.glob("*.json"))
        for request in read_trace_file(file)
        for span in spans_from_request(request)
    ]


def export(maker: StoreMaker, spans: list[Span], table: str = "otel_traces", **style: Any) -> None:
    """Insert the rows the exporter would write, in requests of 500 spans."""
    transport = maker.transport()
    try:
        for start in range(0, len(spans), 500):
            rows = otel_rows(spans[start : start + 500], **style)
            transport.insert(table, rows.column_names, arrow_stream(rows))
    finally:
        transport.close()


def as_exported(span: Span, scope: bool = True) -> Span:
    """What survives the exporter: string attribute values; no flags, dropped counts."""

    def strings(attributes: Any) -> dict[str, Any]:
        return {k: _as_string(v) for k, v in attributes.items()}

    return dataclasses.replace(
        span,
        attributes=strings(span.attributes),
        resource_attributes=strings(span.resource_attributes),
        events=tuple(
            SpanEvent(
                name=e.name, time_unix_nano=e.time_unix_nano, attributes=strings(e.attributes)
            )
            for e in span.events
        ),
        links=tuple(
            SpanLink(
                trace_id=link.trace_id,
                span_id=link.span_id,
                trace_state=link.trace_state,
                attributes=strings(link.attributes),
            )
            for link in span.links
        ),
        flags=0,
        dropped_attributes_count=0,
        dropped_events_count=0,
        dropped_links_count=0,
    )


VERSIONS = [("current", "proto"), ("current", "pdata"), ("v0.9x", "proto")]


@pytest.fixture(params=VERSIONS, ids=lambda v: f"{v[0]}-{v[1]}")
def exported(request: pytest.FixtureRequest, ch: StoreMaker) -> tuple[StoreMaker, list[Span]]:  # noqa: F811
    version, enum_style = request.param
    create_exporter_tables(ch, version)
    spans = sample_spans()
    export(ch, spans, enum_style=enum_style, scope_columns=version == "current")
    return ch, spans


def test_spans_read_back_as_exported(exported: tuple[StoreMaker, list[Span]]) -> None:
    maker, spans = exported
    store = maker(read_only=True)
    assert store.layout == "otel"
    trace_ids = sorted({s.trace_id for s in spans})
    for trace_id in trace_ids:
        expected = sorted(
            (as_exported(s) for s in spans if s.trace_id == trace_id),
            key=lambda s: (s.start_unix_nano, s.span_id),
        )
        assert store.spans([trace_id]) == expected, trace_id
    everything = store.spans(trace_ids)
    assert len(everything) == len(spans)
    stats = store.stats()
    assert (stats.spans, stats.traces) == (len(spans), len(trace_ids))
    assert stats.services == sorted({s.service_name for s in spans})
    request = store.trace_request(trace_ids[0])
    assert request is not None
    assert [s.span_id for s in spans_from_request(request)] == [
        s.span_id for s in store.spans([trace_ids[0]])
    ]
    assert store.trace_request("ab" * 16) is None


def test_entity_lookups_and_links(exported: tuple[StoreMaker, list[Span]]) -> None:
    maker, spans = exported
    store = maker(read_only=True)
    keys = {k.key: k for k in store.entity_keys()}
    assert "order.id" in keys and keys["order.id"].traces > 1
    carrying = sorted(
        {s.trace_id for s in spans if s.attributes.get("order.id") == "ORD-1002"},
    )
    assert carrying and sorted(store.entity_trace_ids("order.id", "ORD-1002")) == carrying
    values = {v.value: v for v in store.entity_values("order.id")}
    assert values["ORD-1002"].traces == len(carrying)
    linked = [s for s in spans if s.links]
    assert linked, "the samples link Kafka consumers to their producers"
    consumer = linked[0]
    producer_trace = consumer.links[0].trace_id
    assert producer_trace in store.linked_trace_ids([consumer.trace_id])
    assert consumer.trace_id in store.linked_trace_ids([producer_trace])
    entities = store.trace_entities(carrying)
    assert all("ORD-1002" in entities[t]["order.id"] for t in carrying)


def test_writes_are_refused(exported: tuple[StoreMaker, list[Span]]) -> None:
    from test_store import rich_request

    maker, _ = exported
    store = maker()  # not read-only: still the exporter's table, still not written
    assert store.layout == "otel"
    with pytest.raises(StoreError, match="does not write"):
        store.write(rich_request())


@pytest.fixture(scope="module", params=BACKENDS)
def otel_sources(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LocalSource, LocalSource]]:
    """The samples in DuckDB (through seqtrace's ingest) and in otel_traces (as the
    exporter writes them), once per backend."""
    if request.param != "live":
        require_chdb()
    duck = DuckDBStore(Path(tmp_path_factory.mktemp("otel")) / "samples.duckdb")
    for file in sorted(SAMPLES.glob("*.json")):
        for req in read_trace_file(file):
            duck.write(req)
    maker = StoreMaker(request.param)
    create_exporter_tables(maker, "current")
    export(maker, sample_spans())
    yield LocalSource(duck), LocalSource(maker(read_only=True))
    duck.close()
    maker.teardown()


def test_reports_match_duckdb(otel_sources: tuple[LocalSource, LocalSource]) -> None:
    duck, otel = otel_sources
    assert otel.stats() == duck.stats()
    assert otel.failures() == duck.failures()
    assert otel.failures(0, 1 << 62) == duck.failures(0, 1 << 62)
    for limit in (0, 2):  # a cut listing picks the same traces
        assert store_failure_report(otel.reader, 0, 1 << 62, limit=limit) == (
            store_failure_report(duck.reader, 0, 1 << 62, limit=limit)
        )
    for service in duck.stats()["services"]:
        assert otel.failures(0, 1 << 62, service) == duck.failures(0, 1 << 62, service), service
    assert otel.recent_traces(1000) == duck.recent_traces(1000)
    assert otel.throughput() == duck.throughput()
    assert otel.service_map() == duck.service_map()
    whole = (0, 1 << 62)
    assert otel.service_map(*whole) == duck.service_map(*whole)
    assert otel.reader.service_map(*whole, "cancel", "cancel") is not None  # type: ignore[attr-defined]
    spec = _slo_spec(duck)
    assert otel.slo(spec) == duck.slo(spec)


def test_entities_and_diagrams_match_duckdb(otel_sources: tuple[LocalSource, LocalSource]) -> None:
    duck, otel = otel_sources
    keys = duck.entities(limit=1000)
    assert_same_keys(otel.entities(limit=1000), keys)
    for key in (k["key"] for k in keys["keys"]):
        values = duck.entities(key, limit=10_000)
        assert otel.entities(key, limit=10_000) == values, key
        for value in values["values"]:
            entity = f"{key}={value['value']}"
            assert otel.diagram(entity=entity, fmt="json") == duck.diagram(
                entity=entity, fmt="json"
            ), entity


def test_lookup_table_is_optional(ch: StoreMaker) -> None:  # noqa: F811
    """Without the exporter's trace-id lookup table (created separately, or dropped),
    trace lookups scan by the TraceId bloom filter instead; results do not change."""
    create_exporter_tables(ch, "current", lookup=False)
    spans = sample_spans()
    export(ch, spans)
    store = ch(read_only=True)
    assert isinstance(store, ClickHouseStore)
    trace_id = spans[0].trace_id
    expected = sorted(
        (as_exported(s) for s in spans if s.trace_id == trace_id),
        key=lambda s: (s.start_unix_nano, s.span_id),
    )
    assert store.spans([trace_id]) == expected


def test_custom_table_name_and_explicit_layout(ch: StoreMaker) -> None:  # noqa: F811
    create_exporter_tables(ch, "current", table="shop_traces")
    export(ch, sample_spans()[:50], table="shop_traces")
    store = ch(read_only=True, otel_table="shop_traces", layout="otel")
    assert store.stats().spans == 50

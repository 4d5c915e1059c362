"""Log records (#18) in ClickHouse: seqtrace's own ``seqtrace_logs`` table written and read
through ClickHouseStore, and the OpenTelemetry Collector exporter's ``otel_logs`` read
beside its ``otel_traces`` (on chdb, embedded and over HTTP)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from test_clickhouse import SAMPLES, StoreMaker, ch  # noqa: F401
from test_clickhouse_otel import create_exporter_tables

from collector.files import read_log_file
from spanstore.clickhouse_store import _as_string, literal
from spanstore.duckdb_store import DuckDBStore
from spanstore.logs import StoredLog, log_dicts, log_to_dict

LOG_FILES = sorted((SAMPLES / "logs").glob("*.json"))
FAR_FUTURE = 1 << 62
ORD_1002_TRACE = "28aa6f8cecf63975079bb73dfbbeb308"

# The clickhouseexporter's otel_logs columns (NOTES.md; collector-contrib
# exporter/clickhouseexporter/internal/sql_templates/logs_table.sql, current version).
OTEL_LOGS_SQL = """CREATE TABLE IF NOT EXISTS otel_logs (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TimestampTime DateTime DEFAULT toDateTime(Timestamp),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    TraceFlags UInt8,
    SeverityText LowCardinality(String) CODEC(ZSTD(1)),
    SeverityNumber UInt8,
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Body String CODEC(ZSTD(1)),
    ResourceSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion LowCardinality(String) CODEC(ZSTD(1)),
    ScopeAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    LogAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    EventName String CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1
) ENGINE = MergeTree()
PARTITION BY toDate(TimestampTime)
PRIMARY KEY (ServiceName, TimestampTime)
ORDER BY (ServiceName, TimestampTime, Timestamp)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1"""


def load_logs(write: Any) -> int:
    accepted = 0
    for file in LOG_FILES:
        for request in read_log_file(file):
            accepted += write(request.SerializeToString()).accepted
    return accepted


def duckdb_logs(tmp_path: Path) -> DuckDBStore:
    path = str(tmp_path / "logs.duckdb")
    store = DuckDBStore(path)
    assert load_logs(store.write_logs) == 90
    # Closed and opened again: the comparison is with what DuckDB committed (on main at
    # 09:41, DuckDB log reads did not yet see acknowledged but uncommitted records).
    store.close()
    return DuckDBStore(path, read_only=True)


def json_shape(records: list[StoredLog]) -> list[dict[str, Any]]:
    return [log_to_dict(r) for r in records]


# ------------------------------------------------------------------ seqtrace's layout


def test_logs_written_to_clickhouse_read_back_as_in_duckdb(
    ch: StoreMaker,  # noqa: F811
    tmp_path: Path,
) -> None:
    store = ch()
    assert load_logs(store.write_logs) == 90
    with duckdb_logs(tmp_path) as duck:
        assert store.log_counts() == duck.log_counts() == (90, 3)
        everything = duck.logs_in_range(0, FAR_FUTURE)
        assert json_shape(store.logs_in_range(0, FAR_FUTURE)) == json_shape(everything)
        traces = sorted({r.trace_id for r in everything if r.trace_id})
        assert len(traces) == 47
        assert json_shape(store.logs_of_traces(traces)) == json_shape(duck.logs_of_traces(traces))
        order = store.logs_of_traces([ORD_1002_TRACE])
        assert [r.body for r in order if r.severity == "WARN"] == [
            "payprovider answered 503; retry 1 in 100 ms",
            "payprovider answered 503; retry 2 in 200 ms",
        ]
        # Lossless: the OTLP request rebuilt from either store is the same.
        assert store.logs_request(ORD_1002_TRACE) == duck.logs_request(ORD_1002_TRACE)
        assert log_dicts(store.logs_request(ORD_1002_TRACE)) == json_shape(order)
        untraced = store.logs_in_range(0, FAR_FUTURE, without_trace=True)
        assert json_shape(untraced) == json_shape(
            duck.logs_in_range(0, FAR_FUTURE, without_trace=True)
        )
        assert len(untraced) == 3 and all(r.trace_id is None for r in untraced)
        errors = store.logs_in_range(0, FAR_FUTURE, min_severity=17, limit=2)
        assert json_shape(errors) == json_shape(
            duck.logs_in_range(0, FAR_FUTURE, min_severity=17, limit=2)
        )
        assert len(errors) == 2 and all(r.severity_number >= 17 for r in errors)
    store.close()
    # A read-only open of the same database reads them too.
    again = ch(read_only=True)
    assert again.log_counts() == (90, 3)
    again.close()


def test_a_database_made_before_logs_gains_the_table_on_a_writable_open(
    ch: StoreMaker,  # noqa: F811
) -> None:
    ch().close()
    transport = ch.transport()
    transport.command("DROP TABLE seqtrace_logs")
    transport.close()
    old = ch(read_only=True)
    assert old.log_counts() == (0, 0) and old.logs_in_range(0, FAR_FUTURE) == []
    assert old.logs_of_traces([ORD_1002_TRACE]) == []
    old.close()
    store = ch()
    assert load_logs(store.write_logs) == 90
    assert store.log_counts() == (90, 3)
    store.close()


# ------------------------------------------------------------------ the exporter's otel_logs


def exporter_row(record: StoredLog) -> str:
    """The VALUES tuple the exporter writes for a record: hex ids ('' without), values as
    text (pcommon Value.AsString())."""

    def string_map(attributes: dict[str, Any]) -> str:
        pairs = [f"{literal(k)}, {literal(_as_string(v))}" for k, v in attributes.items()]
        return f"map({', '.join(pairs)})"

    return "(" + ", ".join([
        f"fromUnixTimestamp64Nano(toInt64({record.time_unix_nano}))",
        literal(record.trace_id or ""),
        literal(record.span_id or ""),
        str(record.flags),
        literal(record.severity_text),
        str(record.severity_number),
        literal(record.service),
        literal(_as_string(record.body)),
        string_map(record.resource_attributes),
        literal(record.scope_name),
        literal(record.scope_version),
        string_map(record.attributes),
        literal(record.event_name),
    ]) + ")"  # fmt: skip


def as_exported(record: StoredLog) -> dict[str, Any]:
    """What survives the exporter: text values, no observed time, no dropped count."""
    shape = log_to_dict(record)
    shape["attributes"] = {k: _as_string(v) for k, v in record.attributes.items()}
    shape["body"] = _as_string(record.body)
    shape["body_value"] = None
    shape["observed_unix_nano"] = record.time_unix_nano
    return shape


def test_otel_logs_beside_otel_traces_are_read_and_correlated_by_trace(
    ch: StoreMaker,  # noqa: F811
    tmp_path: Path,
) -> None:
    create_exporter_tables(ch, "current")
    reader = ch(read_only=True)
    assert reader.layout == "otel"
    assert reader.log_counts() == (0, 0)  # no otel_logs table: no records, no error
    assert reader.logs_of_traces([ORD_1002_TRACE]) == []
    reader.close()
    with duckdb_logs(tmp_path) as duck:
        # The exporter keeps only timed records (it writes observed time as Timestamp
        # when the time is unset); keep the test's expectations to the timed ones.
        records = [r for r in duck.logs_in_range(0, FAR_FUTURE) if not r.time_unset]
    transport = ch.transport()
    transport.command(OTEL_LOGS_SQL)
    columns = (
        "Timestamp, TraceId, SpanId, TraceFlags, SeverityText, SeverityNumber, ServiceName, "
        "Body, ResourceAttributes, ScopeName, ScopeVersion, LogAttributes, EventName"
    )
    transport.command(
        f"INSERT INTO otel_logs ({columns}) VALUES " + ", ".join(map(exporter_row, records))
    )
    transport.close()
    store = ch(read_only=True)
    assert store.layout == "otel"
    untraced = sum(1 for r in records if r.trace_id is None)
    assert store.log_counts() == (len(records), untraced)
    read = store.logs_in_range(0, FAR_FUTURE)
    assert [log_to_dict(r) for r in read] == [as_exported(r) for r in records]
    order = store.logs_of_traces([ORD_1002_TRACE])
    assert [log_to_dict(r) for r in order] == [
        as_exported(r) for r in records if r.trace_id == ORD_1002_TRACE
    ]
    assert [r.body for r in order if r.severity == "WARN"] == [
        "payprovider answered 503; retry 1 in 100 ms",
        "payprovider answered 503; retry 2 in 200 ms",
    ]
    request = store.logs_request(ORD_1002_TRACE)
    assert [d["body"] for d in log_dicts(request)] == [r.body for r in order]
    assert store.logs_in_range(0, FAR_FUTURE, service="payment", min_severity=13) == [
        r for r in read if r.service == "payment" and r.severity_number >= 13
    ]
    store.close()

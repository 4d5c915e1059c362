-- seqtrace's own tables in ClickHouse. Bump SCHEMA_VERSION in spanstore/clickhouse_store.py
-- when this changes. Statements are separated by ';' at line ends (sent one by one).
--
-- Same content as the DuckDB schema (spanstore/sql/schema.sql): ids are raw bytes, each
-- span's full OTLP protobuf (minus the ids) is in `raw`, the other columns are copies for
-- querying. ClickHouse specifics:
--   * spans, entities and links are partitioned by UTC day of the span start, so time
--     ranges prune whole partitions and retention drops whole parts (@ttl: a TTL clause,
--     or nothing when ttl_days=0);
--   * spans are ordered by (hour of start, trace_id, span_id): a time range reads only its
--     hours, and a trace-id lookup without a time range is a binary search in each hour
--     (ClickHouse's generic exclusion search over the low-cardinality first key column);
--   * ReplacingMergeTree on the natural key collapses re-sent spans that raced past the
--     writer's duplicate check (two collectors receiving the same retry at once). Merges
--     are eventual, so reads that must be exact de-duplicate: FINAL, LIMIT 1 BY or
--     uniqExact(trace_id, span_id) (see docs/scale-out.md).
CREATE TABLE IF NOT EXISTS seqtrace_meta (
    key String,
    value String
) ENGINE = ReplacingMergeTree
ORDER BY key;

CREATE TABLE IF NOT EXISTS seqtrace_resources (
    resource_id UInt64,                 -- blake2b-64 of the serialized Resource + schema url
    service_name LowCardinality(String),
    schema_url String,
    raw String CODEC(ZSTD(3))           -- opentelemetry.proto.resource.v1.Resource
) ENGINE = ReplacingMergeTree
ORDER BY resource_id;

CREATE TABLE IF NOT EXISTS seqtrace_scopes (
    scope_id UInt64,                    -- blake2b-64 of the serialized scope + schema url
    name String,
    version String,
    schema_url String,
    raw String CODEC(ZSTD(3))           -- opentelemetry.proto.common.v1.InstrumentationScope
) ENGINE = ReplacingMergeTree
ORDER BY scope_id;

CREATE TABLE IF NOT EXISTS seqtrace_spans (
    trace_id FixedString(16),
    span_id FixedString(8),
    parent_span_id Nullable(FixedString(8)),
    resource_id UInt64,
    scope_id UInt64,
    service_name LowCardinality(String),
    name LowCardinality(String),
    kind UInt8,
    start_unix_nano Int64 CODEC(T64, ZSTD(1)),
    duration_ns Int64 CODEC(T64, ZSTD(1)),
    status_code UInt8,
    status_message Nullable(String) CODEC(ZSTD(1)),
    exception_type LowCardinality(Nullable(String)),
    exception_message Nullable(String) CODEC(ZSTD(1)),
    http_method LowCardinality(Nullable(String)),
    http_route LowCardinality(Nullable(String)),
    url_path Nullable(String) CODEC(ZSTD(1)),
    rpc_system LowCardinality(Nullable(String)),
    rpc_service LowCardinality(Nullable(String)),
    rpc_method LowCardinality(Nullable(String)),
    db_system LowCardinality(Nullable(String)),
    db_name LowCardinality(Nullable(String)),
    db_operation LowCardinality(Nullable(String)),
    peer_service LowCardinality(Nullable(String)),
    server_address LowCardinality(Nullable(String)),
    messaging_system LowCardinality(Nullable(String)),
    messaging_destination LowCardinality(Nullable(String)),
    messaging_operation LowCardinality(Nullable(String)),
    http_status_code Nullable(Int64),
    raw String CODEC(ZSTD(3)),          -- opentelemetry.proto.trace.v1.Span without ids
    INDEX idx_service service_name TYPE set(256) GRANULARITY 4
) ENGINE = ReplacingMergeTree
PARTITION BY toDate(toDateTime(intDiv(start_unix_nano, 1000000000), 'UTC'))
ORDER BY (intDiv(start_unix_nano, 3600000000000), trace_id, span_id)
@ttl
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1;

-- Trace id -> the times of its first and last span, kept by the materialized view below
-- on every insert into seqtrace_spans. A lookup by trace id (a diagram's traces, one
-- trace's spans) first reads this table (ordered by trace_id: a binary search) and then
-- only the (hour, trace_id) ranges of seqtrace_spans' sorting key that hold the trace,
-- instead of every hour of the retention period. Rows of one trace from different
-- inserts are combined by the reads (min/max) and by AggregatingMergeTree's merges.
CREATE TABLE IF NOT EXISTS seqtrace_trace_index (
    trace_id FixedString(16),
    day Date,
    first_start SimpleAggregateFunction(min, Int64),
    last_start SimpleAggregateFunction(max, Int64)
) ENGINE = AggregatingMergeTree
PARTITION BY day
ORDER BY trace_id
@ttl_day
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS seqtrace_trace_index_mv TO seqtrace_trace_index AS
SELECT
    trace_id,
    toDate(toDateTime(intDiv(min(start_unix_nano), 1000000000), 'UTC')) AS day,
    min(start_unix_nano) AS first_start,
    max(start_unix_nano) AS last_start
FROM seqtrace_spans
GROUP BY trace_id;

-- Business entities (order.id=...) on spans or their resources: ordered for the lookup
-- "which traces carry key=value (in this time range)", a prefix of the sorting key.
CREATE TABLE IF NOT EXISTS seqtrace_entities (
    key LowCardinality(String),
    value String,
    trace_id FixedString(16),
    span_id FixedString(8),
    service_name LowCardinality(String),
    start_unix_nano Int64
) ENGINE = ReplacingMergeTree
PARTITION BY toDate(toDateTime(intDiv(start_unix_nano, 1000000000), 'UTC'))
ORDER BY (key, value, start_unix_nano, trace_id, span_id)
@ttl
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1;

-- Span links; the bloom filter finds a link from its far end (linked_trace_id).
CREATE TABLE IF NOT EXISTS seqtrace_links (
    trace_id FixedString(16),
    span_id FixedString(8),
    linked_trace_id FixedString(16),
    linked_span_id FixedString(8),
    start_unix_nano Int64,
    INDEX idx_linked_trace linked_trace_id TYPE bloom_filter(0.001) GRANULARITY 1
) ENGINE = ReplacingMergeTree
PARTITION BY toDate(toDateTime(intDiv(start_unix_nano, 1000000000), 'UTC'))
ORDER BY (trace_id, span_id, linked_trace_id, linked_span_id)
@ttl
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1
;

-- Log records (#18), as in the DuckDB file's `logs` table: typed copies of what queries
-- filter on, and `raw`, the LogRecord's protobuf without its times and ids (lossless).
-- Ordered by hour and time: reads are time ranges, and a trace's records are looked up
-- within its time bounds (the bloom filter skips granules without the trace id).
-- Created on every writable open too (IF NOT EXISTS), so a database that seqtrace
-- created before logs were kept gains the table without a schema version bump.
CREATE TABLE IF NOT EXISTS seqtrace_logs (
    trace_id Nullable(FixedString(16)),  -- null: the record belongs to no trace
    span_id Nullable(FixedString(8)),
    time_unix_nano Int64 CODEC(T64, ZSTD(1)),
    observed_unix_nano Int64 CODEC(T64, ZSTD(1)),
    time_unset Bool,
    severity_number UInt8,
    severity_text LowCardinality(String),
    service_name LowCardinality(String),
    resource_id UInt64,
    scope_id UInt64,
    flags UInt32,
    event_name LowCardinality(String),
    raw String CODEC(ZSTD(3)),          -- opentelemetry.proto.logs.v1.LogRecord without ids
    INDEX idx_log_trace trace_id TYPE bloom_filter(0.001) GRANULARITY 1
) ENGINE = MergeTree
PARTITION BY toDate(toDateTime(intDiv(time_unix_nano, 1000000000), 'UTC'))
ORDER BY (intDiv(time_unix_nano, 3600000000000), service_name, time_unix_nano)
@ttl_logs
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1

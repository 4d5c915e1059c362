-- seqtrace store schema. Bump SCHEMA_VERSION in spanstore/duckdb_store.py when this changes.
-- Ids are raw bytes (trace 16, span 8). Each span's full OTLP protobuf is kept in `raw`
-- (minus the ids, which have columns of their own), so nothing the exporter sent is lost;
-- the other columns are copies for querying.
CREATE TABLE IF NOT EXISTS seqtrace_meta (
    key VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS resources (
    resource_id UBIGINT PRIMARY KEY,   -- blake2b-64 of the serialized Resource + schema url
    service_name VARCHAR NOT NULL,
    schema_url VARCHAR NOT NULL,
    raw BLOB NOT NULL                   -- opentelemetry.proto.resource.v1.Resource
);

CREATE TABLE IF NOT EXISTS scopes (
    scope_id UBIGINT PRIMARY KEY,      -- blake2b-64 of the serialized scope + schema url
    name VARCHAR NOT NULL,
    version VARCHAR NOT NULL,
    schema_url VARCHAR NOT NULL,
    raw BLOB NOT NULL                   -- opentelemetry.proto.common.v1.InstrumentationScope
);

CREATE TABLE IF NOT EXISTS spans (
    trace_id BLOB NOT NULL,
    span_id BLOB NOT NULL,
    parent_span_id BLOB,
    resource_id UBIGINT NOT NULL,
    scope_id UBIGINT NOT NULL,
    service_name VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    kind UTINYINT NOT NULL,
    start_unix_nano BIGINT NOT NULL,
    duration_ns BIGINT NOT NULL,
    status_code UTINYINT NOT NULL,
    status_message VARCHAR,
    exception_type VARCHAR,
    exception_message VARCHAR,
    http_method VARCHAR,
    http_route VARCHAR,
    url_path VARCHAR,
    http_status_code BIGINT,
    rpc_system VARCHAR,
    rpc_service VARCHAR,
    rpc_method VARCHAR,
    db_system VARCHAR,
    db_name VARCHAR,
    db_operation VARCHAR,
    peer_service VARCHAR,
    server_address VARCHAR,
    messaging_system VARCHAR,
    messaging_destination VARCHAR,
    messaging_operation VARCHAR,
    raw BLOB USING COMPRESSION zstd NOT NULL  -- opentelemetry.proto.trace.v1.Span without ids
);

-- Business entities (order.id=...) found on spans or their resources, for entity lookups.
-- Entity lookups find traces, never single spans, so the span id is not kept (schema
-- version 2; migrate_v1_to_v2.sql drops it from older files).
CREATE TABLE IF NOT EXISTS span_entities (
    key VARCHAR NOT NULL,
    value VARCHAR NOT NULL,
    trace_id BLOB NOT NULL,
    service_name VARCHAR NOT NULL,
    start_unix_nano BIGINT NOT NULL
);

-- Span links, both ends, so linked traces are found from either side.
CREATE TABLE IF NOT EXISTS span_links (
    trace_id BLOB NOT NULL,
    span_id BLOB NOT NULL,
    linked_trace_id BLOB NOT NULL,
    linked_span_id BLOB NOT NULL,
    start_unix_nano BIGINT NOT NULL
);

-- Entity lookups by value (see entity_trace_ids.sql for how queries reach it).
CREATE INDEX IF NOT EXISTS span_entities_value ON span_entities (value);

@logs_table

@trace_shapes_table

-- Log records (schema version 3; included by schema.sql and migrate_v2_to_v3.sql as
-- @logs_table). The typed columns are what queries filter on; `raw` is the record's own
-- protobuf (opentelemetry.proto.logs.v1.LogRecord) without its times and
-- ids, which have columns: body, attributes, severity, flags, event name and dropped
-- count are all there, so nothing the exporter sent is lost (spanstore/logs.py).
CREATE TABLE IF NOT EXISTS logs (
    trace_id BLOB,                       -- null: a record outside any trace
    span_id BLOB,
    time_unix_nano BIGINT NOT NULL,      -- its time, or its observed time when unset
    observed_unix_nano BIGINT NOT NULL,
    time_unset BOOLEAN NOT NULL,
    severity_number UTINYINT NOT NULL,
    severity_text VARCHAR NOT NULL,
    service_name VARCHAR NOT NULL,
    resource_id UBIGINT NOT NULL,
    scope_id UBIGINT NOT NULL,
    flags UINTEGER NOT NULL,
    event_name VARCHAR NOT NULL,
    raw BLOB USING COMPRESSION zstd NOT NULL
);

-- Schema version 2 -> 3: the `logs` table (as in schema.sql, which new files get; the
-- statement is repeated here so that a migration is one file). Runs in the opening
-- writer's transaction, so a crash leaves the file at version 2, whole.
CREATE TABLE IF NOT EXISTS logs (
    trace_id BLOB,
    span_id BLOB,
    time_unix_nano BIGINT NOT NULL,
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
UPDATE seqtrace_meta SET value = '3' WHERE key = 'schema_version';

-- Each trace's fold row (schema version 4; included by schema.sql and
-- migrate_v3_to_v4.sql as @trace_shapes_table): what flow_shapes.sql computes from a
-- trace's spans (see flow_root_shapes.sql for what the columns mean), kept so that a busy
-- entity's diagram and `flow --entity` read one row per trace instead of some 25 columns
-- of every span (docs/performance.md, "#16 flows"). Derived data: a row is used only while
-- the trace still has `spans` spans whose starts give `start_check` (spans are never
-- changed once stored, so a trace that gained or lost a span no longer matches), else its
-- shape is computed from the spans again. Written by the writer thread only: hour by hour
-- when it is idle (trace_shapes_of_hour.sql), and the rows reads computed
-- (trace_shapes_keep.sql). A trace may have several rows (an old one no longer matches).
CREATE TABLE IF NOT EXISTS trace_shapes (
    trace_id BLOB NOT NULL,
    spans BIGINT NOT NULL,
    start_check BIGINT NOT NULL,        -- sum(start_unix_nano % 2147483647) of its spans
    start_unix_nano BIGINT NOT NULL,
    duration_ns BIGINT NOT NULL,
    outcome VARCHAR NOT NULL,
    fingerprint VARCHAR,
    durations BIGINT[] NOT NULL,
    errors BOOLEAN[] NOT NULL
);

-- The hours of span start time whose traces the writer has given rows (the hour's start).
CREATE TABLE IF NOT EXISTS trace_shape_hours (
    hour_unix_nano BIGINT NOT NULL
);

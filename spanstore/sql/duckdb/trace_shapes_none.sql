-- What flow_trace_shapes.sql reads in place of `trace_shapes` from a version-3 file opened
-- read-only (it has no such table, and a read-only open cannot add one): no rows, with
-- the columns of trace_shapes_table.sql and a `rowid`, so every shape is computed.
(SELECT
    NULL::BIGINT AS rowid, NULL::BLOB AS trace_id, NULL::BIGINT AS spans,
    NULL::BIGINT AS start_check, NULL::BIGINT AS start_unix_nano, NULL::BIGINT AS duration_ns,
    NULL::VARCHAR AS outcome, NULL::VARCHAR AS fingerprint, NULL::BIGINT[] AS durations,
    NULL::BOOLEAN[] AS errors
 WHERE false)

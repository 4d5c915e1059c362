-- The given traces, one row each, with what analyzer.flow folds them by: the columns of
-- flow_root_shapes.sql (fingerprint, durations, errors, spans: see there; both end in
-- flow_shapes.sql). Spans are read from $lo to $hi (inclusive; the caller's bounds on where the
-- traces' spans can be, so zone maps keep the rest of the store out). Used by `flow
-- --entity/--key/--query` and by a busy entity's diagram, which turns only one trace per
-- fingerprint (and the failing ones) into span objects.
WITH roots AS MATERIALIZED (
    SELECT DISTINCT unnest($trace_ids::BLOB[]) AS trace_id
),
-- Found by the trace_id column alone, then read by rowid (see spans_of_traces.sql).
wanted AS MATERIALIZED (
    SELECT s.rowid AS rid
    FROM spans AS s
    WHERE s.trace_id IN (SELECT trace_id FROM roots)
      AND s.start_unix_nano BETWEEN $lo AND $hi
),
@flow_shapes

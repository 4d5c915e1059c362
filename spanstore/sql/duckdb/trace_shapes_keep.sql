-- Rows a read computed (flow_trace_shapes.sql, `kept` false), kept by the writer thread:
-- `new_rows` is their Arrow table (trace ids as hex, as the reader has them). A row kept
-- already, or offered twice (two reads of one trace), is added once.
INSERT INTO trace_shapes BY NAME
SELECT DISTINCT ON (n.trace_id, n.spans, n.start_check)
    unhex(n.trace_id) AS trace_id, n.spans, n.start_check, n.start_unix_nano, n.duration_ns,
    n.outcome, n.fingerprint, n.durations, n.errors
FROM new_rows AS n
WHERE NOT EXISTS (
    SELECT 1 FROM trace_shapes AS k
    WHERE k.trace_id = unhex(n.trace_id) AND k.spans = n.spans
      AND k.start_check = n.start_check
)

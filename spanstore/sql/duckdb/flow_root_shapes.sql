-- The traces whose root span (no parent) is SERVICE's OPERATION and starts in [start, end),
-- one row each, with what `seqtrace flow` folds them by (analyzer/flow/store.py):
--   fingerprint: a hash of the trace's structure: per span in start order, its parent's
--     position, the columns its arrow is drawn from (service, name, kind, status and the
--     semantic-convention columns) and how many of the trace's spans start before it ends
--     (which fixes how spans overlap, so which calls the diagram puts in `par` blocks).
--     Traces with one fingerprint draw one structure, so only one of them need be turned
--     into span objects. NULL when the spans' order is ambiguous (equal start times) or a
--     child on another resource (clock) sticks out of its parent, which the diagram's
--     clock-skew correction may move: such traces are never shared.
--   durations, errors: each span's duration and error flag, in that same order;
--   spans: the trace's span count.
-- Everything after `wanted` is flow_shapes.sql, shared with flow_trace_shapes.sql.
-- Spans are read from $start to $end + $margin, so zone maps keep the rest of the store out.
-- OPERATION matches the root's name, http.route, "METHOD route", rpc.method or
-- "service/method" (as SLO operations do).
WITH roots AS MATERIALIZED (
    SELECT trace_id
    FROM spans
    WHERE start_unix_nano >= $start AND start_unix_nano < $end
      AND parent_span_id IS NULL
      AND service_name = $service
      AND (
        name = $operation OR http_route = $operation OR rpc_method = $operation
        OR (http_method || ' ' || http_route) = $operation
        OR (rpc_service || '/' || rpc_method) = $operation
      )
),
-- Found by the trace_id column alone, then read by rowid (see spans_of_traces.sql).
wanted AS MATERIALIZED (
    SELECT s.rowid AS rid, s.trace_id, s.start_unix_nano AS st
    FROM spans AS s
    WHERE s.trace_id IN (SELECT trace_id FROM roots)
      AND s.start_unix_nano >= $start AND s.start_unix_nano < $end + $margin
),
@flow_shapes
SELECT
    lower(hex(tid)) AS trace_id,
    start_unix_nano, duration_ns, outcome, fingerprint, durations, errors, spans
FROM shapes
ORDER BY start_unix_nano, trace_id

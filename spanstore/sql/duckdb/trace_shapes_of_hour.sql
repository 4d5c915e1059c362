-- The writer's backfill of trace_shapes (trace_shapes_table.sql), one hour at a time while
-- it is idle: a row for each trace whose first span starts in [$start, $end) and has no row
-- yet, computed as flow_trace_shapes.sql computes it (flow_shapes.sql), from its spans
-- within $margin of the hour (where a trace's spans can be: analyzer.source's
-- TRACE_REACH_NS). A trace that reaches further gets a row that does not match its spans,
-- so reads compute it again. Runs on the writer's cursor: `spans` is the table.
-- One part of the hour's traces per statement (those whose id hashes to $part of $parts):
-- the writer commits nothing while it runs (spanstore/trace_shapes.py's SPANS_PER_STEP).
INSERT INTO trace_shapes BY NAME
WITH roots AS MATERIALIZED (
    SELECT DISTINCT s.trace_id
    FROM spans AS s
    WHERE s.start_unix_nano >= $start AND s.start_unix_nano < $end
      AND hash(s.trace_id) % $parts = $part
      AND s.trace_id NOT IN (
        SELECT trace_id FROM trace_shapes
        WHERE start_unix_nano >= $start - $margin AND start_unix_nano < $end
      )
),
wanted AS MATERIALIZED (
    SELECT s.rowid AS rid, s.trace_id, s.start_unix_nano AS st
    FROM spans AS s
    WHERE s.trace_id IN (SELECT trace_id FROM roots)
      AND s.start_unix_nano >= $start - $margin AND s.start_unix_nano < $end + $margin
),
@flow_shapes
, checked AS (
    SELECT trace_id AS tid, count(*) AS spans, sum(st % 2147483647)::BIGINT AS start_check
    FROM wanted
    GROUP BY trace_id
)
SELECT
    h.tid AS trace_id, c.spans, c.start_check, h.start_unix_nano, h.duration_ns, h.outcome,
    h.fingerprint, h.durations, h.errors
FROM shapes AS h
JOIN checked AS c ON c.tid = h.tid
WHERE h.start_unix_nano >= $start AND h.start_unix_nano < $end

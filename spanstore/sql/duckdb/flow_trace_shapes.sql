-- The given traces, one row each, with what analyzer.flow folds them by: the columns of
-- flow_root_shapes.sql (fingerprint, durations, errors, spans: see there; both end in
-- flow_shapes.sql). Spans are read from $lo to $hi (inclusive; the caller's bounds on where the
-- traces' spans can be, so zone maps keep the rest of the store out). Used by `flow
-- --entity/--key/--query` and by a busy entity's diagram, which turns only one trace per
-- fingerprint (and the failing ones) into span objects.
-- `span_rows`: with $with_spans, the stored rows (as spans_of_traces.sql reads them, in
-- start order) of the traces the caller turns into span objects, so that one search of
-- the store answers both: the first trace (start, id) of each fingerprint, every trace
-- without one, with $failing_spans every trace with an error span, and every trace when
-- they hold at most $whole_spans spans together. NULL for the others.
WITH roots AS MATERIALIZED (
    SELECT DISTINCT unnest($trace_ids::BLOB[]) AS trace_id
),
-- Found by the trace_id column alone, then read by rowid (see spans_of_traces.sql).
wanted AS MATERIALIZED (
    SELECT s.rowid AS rid, s.trace_id, s.start_unix_nano AS st
    FROM spans AS s
    WHERE s.trace_id IN (SELECT trace_id FROM roots)
      AND s.start_unix_nano BETWEEN $lo AND $hi
),
@flow_shapes
-- (the part ends with the CTE `shapes`: the comma continues the WITH list)
, drawn AS MATERIALIZED (
    SELECT tid
    FROM (
        SELECT
            tid, outcome, fingerprint,
            row_number() OVER (
                PARTITION BY fingerprint ORDER BY start_unix_nano, tid
            ) AS nth,
            sum(spans) OVER () AS total
        FROM shapes
    )
    WHERE $with_spans AND (
        fingerprint IS NULL OR nth = 1
        OR ($failing_spans AND outcome <> 'ok')
        OR total <= $whole_spans
    )
),
-- Only `scope_id` and `raw` are read from the table again: `ordered` has the rest (each
-- column read at scattered rows costs about as much as a scan of its row groups).
stored AS (
    SELECT
        o.trace_id AS tid,
        list({
            'trace_id': o.trace_id, 'span_id': o.span_id, 'parent_span_id': o.parent_span_id,
            'resource_id': o.resource_id, 'scope_id': s.scope_id,
            'service_name': o.service_name, 'raw': s.raw
        } ORDER BY o.st, o.span_id) AS span_rows
    FROM spans AS s
    JOIN ordered AS o ON o.rid = s.rowid
    WHERE s.rowid IN (
        SELECT o.rid FROM ordered AS o WHERE o.trace_id IN (SELECT tid FROM drawn)
    )
    GROUP BY o.trace_id
)
SELECT
    lower(hex(h.tid)) AS trace_id,
    h.start_unix_nano, h.duration_ns, h.outcome, h.fingerprint, h.durations, h.errors,
    h.spans,
    r.span_rows
FROM shapes AS h
LEFT JOIN stored AS r ON r.tid = h.tid
ORDER BY h.start_unix_nano, trace_id

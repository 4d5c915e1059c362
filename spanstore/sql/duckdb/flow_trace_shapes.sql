-- The given traces, one row each, with what analyzer.flow folds them by: the columns of
-- flow_root_shapes.sql (fingerprint, durations, errors, spans: see there; both end in
-- flow_shapes.sql). Spans are read from $lo to $hi (inclusive; the caller's bounds on where the
-- traces' spans can be, so zone maps keep the rest of the store out). Used by `flow
-- --entity/--key/--query` and by a busy entity's diagram, which turns only one trace per
-- fingerprint (and the failing ones) into span objects.
-- A trace's row comes from `trace_shapes` (trace_shapes_table.sql) when a kept row still
-- matches its spans (count and `start_check`): then only the search reads its spans.
-- The others are computed from their spans; `kept` says which, and `start_check` comes
-- with every row, so that the reader can hand the computed ones to the writer to keep.
-- `span_rows`: with $with_spans, the stored rows (as spans_of_traces.sql reads them, in
-- start order) of the traces the caller turns into span objects, so that one search of
-- the store answers both: the first trace (start, id) of each fingerprint, every trace
-- without one, with $failing_spans every trace with an error span, and every trace when
-- they hold at most $whole_spans spans together. NULL for the others.
WITH roots AS MATERIALIZED (
    SELECT DISTINCT unnest($trace_ids::BLOB[]) AS trace_id
),
-- Found by the trace_id column alone, then read by rowid (see spans_of_traces.sql).
searched AS MATERIALIZED (
    SELECT s.rowid AS rid, s.trace_id, s.start_unix_nano AS st
    FROM spans AS s
    WHERE s.trace_id IN (SELECT trace_id FROM roots)
      AND s.start_unix_nano BETWEEN $lo AND $hi
),
checked AS MATERIALIZED (
    SELECT trace_id AS tid, count(*) AS spans, sum(st % 2147483647)::BIGINT AS start_check
    FROM searched
    GROUP BY trace_id
),
-- The kept rows of these traces, found by trace_id and read by rowid (the list columns
-- of every kept row would cost more than the search).
kept_rows AS MATERIALIZED (
    SELECT k.rowid AS kid FROM trace_shapes AS k WHERE k.trace_id IN (SELECT trace_id FROM roots)
),
kept_read AS MATERIALIZED (
    SELECT
        k.trace_id, k.spans, k.start_check, k.start_unix_nano, k.duration_ns, k.outcome,
        k.fingerprint, k.durations, k.errors
    FROM trace_shapes AS k
    JOIN kept_rows AS r ON r.kid = k.rowid
    WHERE k.rowid IN (SELECT kid FROM kept_rows)
),
kept AS MATERIALIZED (
    SELECT DISTINCT ON (k.trace_id)
        k.trace_id AS tid, k.start_unix_nano, k.duration_ns, k.outcome, k.fingerprint,
        k.durations, k.errors, k.spans
    FROM kept_read AS k
    JOIN checked AS c
        ON c.tid = k.trace_id AND c.spans = k.spans AND c.start_check = k.start_check
),
-- The spans of the traces without a matching kept row: what flow_shapes.sql reads.
wanted AS MATERIALIZED (
    SELECT rid, trace_id, st FROM searched WHERE trace_id NOT IN (SELECT tid FROM kept)
),
@flow_shapes
-- (the part ends with the CTE `shapes`: the comma continues the WITH list)
, every AS MATERIALIZED (
    SELECT *, true AS kept FROM kept
    UNION ALL BY NAME
    SELECT *, false AS kept FROM shapes
),
drawn AS MATERIALIZED (
    SELECT tid
    FROM (
        SELECT
            tid, outcome, fingerprint,
            row_number() OVER (
                PARTITION BY fingerprint ORDER BY start_unix_nano, tid
            ) AS nth,
            sum(spans) OVER () AS total
        FROM every
    )
    WHERE $with_spans AND (
        fingerprint IS NULL OR nth = 1
        OR ($failing_spans AND outcome <> 'ok')
        OR total <= $whole_spans
    )
),
drawn_rows AS MATERIALIZED (
    SELECT rid, trace_id, st FROM searched WHERE trace_id IN (SELECT tid FROM drawn)
),
-- Each column read at scattered rows costs about as much as a scan of the row groups
-- they are in: only the drawn traces' spans are read again (docs/performance.md, #16).
stored AS (
    SELECT
        w.trace_id AS tid,
        list({
            'trace_id': w.trace_id, 'span_id': s.span_id, 'parent_span_id': s.parent_span_id,
            'resource_id': s.resource_id, 'scope_id': s.scope_id,
            'service_name': s.service_name, 'raw': s.raw
        } ORDER BY w.st, s.span_id) AS span_rows
    FROM spans AS s
    JOIN drawn_rows AS w ON w.rid = s.rowid
    WHERE s.rowid IN (SELECT rid FROM drawn_rows)
    GROUP BY w.trace_id
)
SELECT
    lower(hex(h.tid)) AS trace_id,
    h.start_unix_nano, h.duration_ns, h.outcome, h.fingerprint, h.durations, h.errors,
    h.spans,
    r.span_rows,
    h.kept,
    c.start_check
FROM every AS h
JOIN checked AS c ON c.tid = h.tid
LEFT JOIN stored AS r ON r.tid = h.tid
ORDER BY h.start_unix_nano, trace_id

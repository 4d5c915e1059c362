-- The failure report's counting pass (analyzer/failures_store.py), in the store: how many
-- traces the report covers, and the few spans of theirs that may be errors, instead of every
-- span of the range.
-- A trace is covered when its root starts in [start, end): the earliest span without a parent
-- (a missing, empty or all-zero parent id), else its earliest span (by start, then span id:
-- analyzer.failures picks it so), among its spans in [lo, hi) (whole traces are searched that
-- far, as span_frame.sql does); with $service, only traces with a span of that service
-- starting in [start, end) (the traces span_frame.sql reads). A trace without a span in
-- [start, end) cannot have its root there, so no other condition is needed.
-- Rows: one per span of a covered trace that may be an error (status ERROR or an HTTP code
-- of 400 or more; analyzer.failures.error_expr decides the rest in Python, on these rows
-- only), in the span frame's spellings, with `is_root` and its trace's `root_start`; every
-- row carries `traces`, the number of covered traces, and when no span may be an error, one
-- row of nulls carries it alone.
WITH covered AS MATERIALIZED (
    SELECT trace_id, root.span_id AS root_span_id, root.start_unix_nano AS root_start
    FROM (
        SELECT
            trace_id,
            min({
                'orphan': NOT (parent_span_id IS NULL OR ltrim(hex(parent_span_id), '0') = ''),
                'start_unix_nano': start_unix_nano,
                'span_id': span_id
            }) AS root,
            bool_or(
                $service IS NULL
                OR (service_name = $service
                    AND start_unix_nano >= $start AND start_unix_nano < $end)
            ) AS touches
        FROM spans
        WHERE start_unix_nano >= $lo AND start_unix_nano < $hi
        GROUP BY trace_id
    )
    WHERE touches AND root.start_unix_nano >= $start AND root.start_unix_nano < $end
),
possible AS (
    SELECT
        s.trace_id, s.span_id, s.service_name, s.kind, s.status_code, s.status_message,
        s.exception_type, s.exception_message, s.http_status_code,
        s.span_id = c.root_span_id AS is_root,
        c.root_start
    FROM spans AS s
    JOIN covered AS c ON s.trace_id = c.trace_id
    WHERE s.start_unix_nano >= $lo AND s.start_unix_nano < $hi
      AND (s.status_code = 2 OR s.http_status_code >= 400)
)
SELECT
    n.traces,
    lower(hex(p.trace_id)) AS trace_id,
    lower(hex(p.span_id)) AS span_id,
    p.service_name,
    CASE p.kind WHEN 1 THEN 'INTERNAL' WHEN 2 THEN 'SERVER' WHEN 3 THEN 'CLIENT'
        WHEN 4 THEN 'PRODUCER' WHEN 5 THEN 'CONSUMER' ELSE 'UNSPECIFIED' END AS kind,
    CASE p.status_code WHEN 1 THEN 'OK' WHEN 2 THEN 'ERROR' ELSE 'UNSET' END AS status_code,
    coalesce(p.status_message, '') AS status_message,
    p.exception_type,
    p.exception_message,
    p.http_status_code,
    p.is_root,
    p.root_start
FROM (SELECT count(*) AS traces FROM covered) AS n
LEFT JOIN possible AS p ON true
ORDER BY p.trace_id, p.span_id

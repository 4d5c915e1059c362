-- The newest root spans, with each trace's span and error counts. Counting is bounded to
-- the roots' time span (plus a day) so the partitions and hours outside it are not read.
WITH roots AS (
    SELECT
        trace_id AS r_trace_id,
        service_name AS r_service,
        name AS r_name,
        start_unix_nano AS r_start,
        duration_ns AS r_duration,
        status_code AS r_status
    FROM seqtrace_spans
    WHERE parent_span_id IS NULL
    ORDER BY start_unix_nano DESC, trace_id
    LIMIT 1 BY trace_id, span_id
    LIMIT $limit
),
counts AS (
    SELECT
        trace_id AS c_trace_id,
        toInt64(uniqExact(span_id)) AS c_spans,
        toInt64(uniqExactIf(span_id, status_code = 2)) AS c_errors
    FROM seqtrace_spans
    WHERE start_unix_nano BETWEEN (SELECT min(r_start) - 3600000000000 FROM roots)
                              AND (SELECT max(r_start) + 86400000000000 FROM roots)
      AND trace_id IN (SELECT r_trace_id FROM roots)
    GROUP BY trace_id
)
SELECT
    lower(hex(r_trace_id)) AS trace_id,
    toString(r_service) AS service_name,
    toString(r_name) AS name,
    r_start AS start_unix_nano,
    r_duration AS duration_ns,
    multiIf(r_status = 1, 'OK', r_status = 2, 'ERROR', 'UNSET') AS status_code,
    if(c_trace_id = r_trace_id, c_spans, 1) AS spans,
    if(c_trace_id = r_trace_id, c_errors, 0) AS errors
FROM roots
LEFT JOIN counts ON c_trace_id = r_trace_id
ORDER BY r_start DESC

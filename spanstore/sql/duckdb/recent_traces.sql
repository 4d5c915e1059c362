-- The newest root spans, with each trace's span and error counts. Counting is bounded to
-- the roots' time span (plus a day) so zone maps keep it off the rest of the store.
WITH roots AS (
    SELECT trace_id, service_name, name, start_unix_nano, duration_ns, status_code
    FROM spans
    WHERE parent_span_id IS NULL
    ORDER BY start_unix_nano DESC
    LIMIT $limit
),
bounds AS (
    SELECT min(start_unix_nano) - 3600000000000 AS lo,
           max(start_unix_nano) + 86400000000000 AS hi
    FROM roots
),
counts AS (
    SELECT s.trace_id, count(*) AS spans, count(*) FILTER (WHERE s.status_code = 2) AS errors
    FROM spans AS s, bounds
    WHERE s.start_unix_nano BETWEEN bounds.lo AND bounds.hi
      AND s.trace_id IN (SELECT trace_id FROM roots)
    GROUP BY s.trace_id
)
SELECT
    lower(hex(r.trace_id)) AS trace_id, r.service_name, r.name, r.start_unix_nano,
    r.duration_ns,
    CASE r.status_code WHEN 1 THEN 'OK' WHEN 2 THEN 'ERROR' ELSE 'UNSET' END AS status_code,
    coalesce(c.spans, 1) AS spans,
    coalesce(c.errors, 0) AS errors
FROM roots AS r LEFT JOIN counts AS c USING (trace_id)
ORDER BY r.start_unix_nano DESC

-- The newest root spans; searching the newest day first keeps this fast on big stores.
WITH newest AS (SELECT max(start_unix_nano) AS t FROM spans),
roots AS (
    SELECT s.trace_id, s.service_name, s.name, s.start_unix_nano, s.duration_ns, s.status_code
    FROM spans AS s, newest
    WHERE s.parent_span_id IS NULL AND s.start_unix_nano >= newest.t - 86400000000000
    ORDER BY s.start_unix_nano DESC
    LIMIT $limit
)
SELECT
    lower(hex(r.trace_id)) AS trace_id, r.service_name, r.name, r.start_unix_nano,
    r.duration_ns,
    CASE r.status_code WHEN 1 THEN 'OK' WHEN 2 THEN 'ERROR' ELSE 'UNSET' END AS status_code,
    (SELECT count(*) FROM spans AS c WHERE c.trace_id = r.trace_id
        AND c.start_unix_nano >= newest.t - 90000000000000) AS spans,
    (SELECT count(*) FROM spans AS c WHERE c.trace_id = r.trace_id AND c.status_code = 2
        AND c.start_unix_nano >= newest.t - 90000000000000) AS errors
FROM roots AS r, newest
ORDER BY r.start_unix_nano DESC

-- trace_entities.sql for traces known to have spans in [lo, hi]: the time bound lets
-- DuckDB skip row groups (find's page of 100 traces: 10 ms instead of a 1.5 s scan of
-- every entity row at 10M spans).
SELECT DISTINCT lower(hex(trace_id)) AS trace_id, key, value
FROM span_entities
WHERE start_unix_nano >= $lo AND start_unix_nano <= $hi
  AND trace_id IN (SELECT unnest($trace_ids::BLOB[]))
ORDER BY trace_id, key, value

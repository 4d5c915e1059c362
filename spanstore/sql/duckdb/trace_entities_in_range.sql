-- trace_entities.sql for traces known to have spans in [lo, hi] (find's page): the time
-- bound lets DuckDB skip row groups (10 ms instead of a 1.5 s scan at 10M spans).
SELECT lower(hex(trace_id)) AS trace_id, key, list_sort(list(DISTINCT value)) AS trace_values
FROM span_entities
WHERE start_unix_nano >= $lo AND start_unix_nano <= $hi
  AND trace_id IN (SELECT unnest($trace_ids::BLOB[]))
GROUP BY ALL
ORDER BY trace_id, key

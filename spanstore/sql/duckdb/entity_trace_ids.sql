-- Traces carrying key=value, with the first time the entity appears in each. The rowid
-- subquery lets DuckDB use the span_entities_value index (it ignores an index for the
-- combined `key = ... AND value = ...` filter), instead of a scan of the table.
SELECT trace_id, min(start_unix_nano) AS first_start
FROM span_entities
WHERE rowid IN (SELECT rowid FROM span_entities WHERE value = $value)
  AND key = $key
  AND start_unix_nano >= $start AND start_unix_nano < $end
GROUP BY trace_id
ORDER BY first_start, trace_id

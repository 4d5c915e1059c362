-- Each trace's entity keys with their distinct values, sorted. Entity rows are ordered
-- for key=value lookups; for a set of traces the time bounds from the trace index
-- (one scalar subquery) confine the scan to their days (partitions).
WITH (
    SELECT (min(first_start), max(last_start))
    FROM seqtrace_trace_index
    WHERE trace_id IN $trace_ids
) AS bounds
SELECT trace_id, key, arraySort(groupUniqArray(value)) AS trace_values
FROM seqtrace_entities
WHERE trace_id IN $trace_ids
  AND start_unix_nano BETWEEN bounds.1 AND bounds.2
GROUP BY trace_id, key
ORDER BY trace_id, key

-- Entity rows are ordered for key=value lookups; for a set of traces the time bounds
-- from the trace index confine the scan to their days (partitions).
SELECT DISTINCT lower(hex(tid)) AS trace_id, k AS key, v AS value
FROM (
    SELECT trace_id AS tid, key AS k, value AS v
    FROM seqtrace_entities
    WHERE trace_id IN $trace_ids
      AND start_unix_nano BETWEEN
          (SELECT min(first_start) FROM seqtrace_trace_index WHERE trace_id IN $trace_ids)
      AND (SELECT max(last_start) FROM seqtrace_trace_index WHERE trace_id IN $trace_ids)
)
ORDER BY trace_id, key, value

-- Trace ids (hex text in otel_traces) that start with a pasted prefix.
SELECT DISTINCT lower(TraceId) AS trace_id
FROM @table
WHERE startsWith(lower(TraceId), $prefix)
ORDER BY trace_id
LIMIT $limit

-- Trace ids in [lo, hi] (a pasted prefix padded with 00.. and ff..): a range of the
-- trace index's sorting key. ($prefix: the otel dialect's spelling of the same bound.)
SELECT DISTINCT trace_id
FROM seqtrace_trace_index
WHERE trace_id >= toFixedString($lo, 16) AND trace_id <= toFixedString($hi, 16)
ORDER BY trace_id
LIMIT $limit

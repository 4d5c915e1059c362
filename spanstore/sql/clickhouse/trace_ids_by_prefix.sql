-- Trace ids in [lo, hi] (an id prefix padded with 00.. and ff..): a range of the trace
-- index's sorting key.
SELECT DISTINCT lower(hex(trace_id)) AS trace_hex
FROM seqtrace_trace_index
WHERE trace_id >= toFixedString($lo, 16) AND trace_id <= toFixedString($hi, 16)
ORDER BY trace_hex
LIMIT $limit

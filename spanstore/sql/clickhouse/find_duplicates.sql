-- Stored spans among a batch's traces. A re-sent span keeps its start time, so the time
-- bounds confine the search to the batch's hours (the first sorting-key column).
SELECT trace_id, span_id
FROM seqtrace_spans
WHERE start_unix_nano BETWEEN $min_start AND $max_start
  AND trace_id IN $trace_ids

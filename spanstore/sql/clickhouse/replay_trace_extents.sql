-- The given traces, each with its first span start, last span end and span count, oldest
-- first (`seqtrace replay --entity/--trace`: which traces, in which order, shifted how far).
SELECT trace_id, min(start_unix_nano) AS first_start,
       max(start_unix_nano + duration_ns) AS last_end, uniqExact(span_id) AS spans
FROM seqtrace_spans
WHERE (intDiv(start_unix_nano, 3600000000000), trace_id) IN (@trace_hours)
GROUP BY trace_id
ORDER BY first_start, trace_id

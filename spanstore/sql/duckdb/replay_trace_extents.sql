-- The given traces, each with its first span start, last span end and span count, oldest first
-- (`seqtrace replay --entity/--trace`: which traces, in which order, shifted how far).
SELECT trace_id, min(start_unix_nano) AS first_start,
       max(start_unix_nano + duration_ns) AS last_end, count(*) AS spans
FROM spans
WHERE trace_id IN (SELECT unnest($trace_ids::BLOB[]))
GROUP BY trace_id
ORDER BY first_start, trace_id

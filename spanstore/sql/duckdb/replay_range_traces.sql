-- Traces with a span starting in [$start, $end), each with its first span start and its
-- last span end and span count (over all its spans within [$lo, $hi], the reach around the range), oldest
-- first: what `seqtrace replay --from --to` re-sends, and how far it shifts them.
WITH picked AS (
    SELECT DISTINCT trace_id FROM spans
    WHERE start_unix_nano >= $start AND start_unix_nano < $end
)
SELECT s.trace_id, min(s.start_unix_nano) AS first_start,
       max(s.start_unix_nano + s.duration_ns) AS last_end, count(*) AS spans
FROM spans AS s
WHERE s.trace_id IN (SELECT trace_id FROM picked)
  AND s.start_unix_nano BETWEEN $lo AND $hi
GROUP BY s.trace_id
ORDER BY first_start, s.trace_id

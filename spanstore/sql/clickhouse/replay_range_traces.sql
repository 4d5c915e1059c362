-- Traces with a span starting in [$start, $end), each with its first span start, last
-- span end and span count (over its spans within [$lo, $hi], the reach around the range),
-- oldest first: what `seqtrace replay --from --to` re-sends, and how far it shifts them.
SELECT trace_id, min(start_unix_nano) AS first_start,
       max(start_unix_nano + duration_ns) AS last_end, uniqExact(span_id) AS spans
FROM seqtrace_spans
WHERE trace_id IN (
        SELECT trace_id FROM seqtrace_spans
        WHERE start_unix_nano >= $start AND start_unix_nano < $end
    )
  AND start_unix_nano BETWEEN $lo AND $hi
GROUP BY trace_id
ORDER BY first_start, trace_id

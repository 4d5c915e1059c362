SELECT
    value,
    toInt64(uniqExact(trace_id, span_id)) AS spans,
    toInt64(uniqExact(trace_id)) AS traces,
    min(start_unix_nano) AS first_unix_nano,
    max(start_unix_nano) AS last_unix_nano
FROM seqtrace_entities
WHERE key = $key
  AND start_unix_nano >= $start
  AND start_unix_nano < $end
  AND startsWith(value, $prefix)
GROUP BY value
ORDER BY last_unix_nano DESC, value
LIMIT $limit

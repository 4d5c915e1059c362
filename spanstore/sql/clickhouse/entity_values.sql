-- FINAL: a raced duplicate row must not count twice; the rows of one key are read in
-- (value, ...) order, so the aggregation streams.
SELECT
    value,
    toInt64(count()) AS spans,
    toInt64(uniqExact(trace_id)) AS traces,
    min(start_unix_nano) AS first_unix_nano,
    max(start_unix_nano) AS last_unix_nano
FROM seqtrace_entities FINAL
WHERE key = $key
  AND start_unix_nano >= $start
  AND start_unix_nano < $end
  AND startsWith(value, $prefix)
GROUP BY key, value
ORDER BY last_unix_nano DESC, value
LIMIT $limit
SETTINGS optimize_aggregation_in_order = 1

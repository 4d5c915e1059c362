SELECT
    value,
    count(*) AS spans,
    count(DISTINCT trace_id) AS traces,
    min(start_unix_nano) AS first_unix_nano,
    max(start_unix_nano) AS last_unix_nano
FROM span_entities
WHERE key = $key
  AND start_unix_nano >= $start
  AND start_unix_nano < $end
  AND starts_with(value, $prefix)
GROUP BY value
ORDER BY last_unix_nano DESC, value
LIMIT $limit

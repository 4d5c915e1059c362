-- Values of one key, from span or resource attributes. mapContains on the key lets the
-- exporter's bloom filters on mapKeys(...) skip granules without it.
SELECT
    value,
    toInt64(uniqExact(TraceId, SpanId)) AS spans,
    toInt64(uniqExact(TraceId)) AS traces,
    min(toUnixTimestamp64Nano(Timestamp)) AS first_unix_nano,
    max(toUnixTimestamp64Nano(Timestamp)) AS last_unix_nano
FROM @table
ARRAY JOIN arrayFilter(v -> v != '', [
    if(mapContains(SpanAttributes, $key), SpanAttributes[$key], ''),
    if(mapContains(ResourceAttributes, $key), ResourceAttributes[$key], '')
]) AS value
WHERE (mapContains(SpanAttributes, $key) OR mapContains(ResourceAttributes, $key))
  AND Timestamp >= fromUnixTimestamp64Nano(toInt64($start))
  AND Timestamp < fromUnixTimestamp64Nano(toInt64($end))
  AND startsWith(value, $prefix)
GROUP BY value
ORDER BY last_unix_nano DESC, value
LIMIT $limit

-- Traces carrying key=value on a span or its resource, with the first time the entity
-- appears in each. The exporter's bloom filters on mapValues(...) / mapKeys(...) skip the
-- granules that cannot match (docs/scale-out.md).
SELECT lower(TraceId) AS trace_id, min(toUnixTimestamp64Nano(Timestamp)) AS first_start
FROM @table
WHERE (SpanAttributes[$key] = $value OR ResourceAttributes[$key] = $value)
  AND Timestamp >= fromUnixTimestamp64Nano(toInt64($start))
  AND Timestamp < fromUnixTimestamp64Nano(toInt64($end))
GROUP BY TraceId
ORDER BY first_start, trace_id

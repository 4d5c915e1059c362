-- Entity keys, most widespread first (as entity_keys.sql), over the attribute maps.
-- $keys: the attribute keys that name business entities. Distinct counts are estimates
-- (uniq), span counts exact.
SELECT
    toString(kv.1) AS key,
    toInt64(uniq(kv.2)) AS `values`,
    toInt64(uniqExact(TraceId, SpanId)) AS spans,
    toInt64(uniq(TraceId)) AS traces,
    toInt64(uniqExact(ServiceName)) AS services
FROM @table
ARRAY JOIN @otel_entity_pairs AS kv
WHERE hasAny(mapKeys(SpanAttributes), $keys) OR hasAny(mapKeys(ResourceAttributes), $keys)
GROUP BY key
ORDER BY traces DESC, key
LIMIT $limit

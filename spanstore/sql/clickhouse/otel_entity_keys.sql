-- Entity keys, most likely first, over the attribute maps (as entity_keys.sql over
-- seqtrace_entities). $keys: the attribute keys that name business entities.
WITH rows AS (
    SELECT
        kv.1 AS key,
        kv.2 AS value,
        TraceId AS trace_id,
        SpanId AS span_id,
        ServiceName AS service_name
    FROM @table
    ARRAY JOIN arrayConcat(
        arrayFilter(x -> has($keys, x.1) AND x.2 != '',
                    arrayZip(mapKeys(SpanAttributes), mapValues(SpanAttributes))),
        arrayFilter(x -> has($keys, x.1) AND x.2 != '',
                    arrayZip(mapKeys(ResourceAttributes), mapValues(ResourceAttributes)))
    ) AS kv
    WHERE hasAny(mapKeys(SpanAttributes), $keys) OR hasAny(mapKeys(ResourceAttributes), $keys)
),
per_value AS (
    SELECT
        key,
        value,
        uniqExact(trace_id, span_id) AS spans,
        uniqExact(trace_id) AS traces,
        uniqExact(service_name) AS services
    FROM rows
    GROUP BY key, value
),
per_key AS (
    SELECT key, uniqExact(trace_id) AS traces, uniqExact(service_name) AS services
    FROM rows
    GROUP BY key
)
SELECT
    toString(p.key) AS key,
    toInt64(count()) AS `values`,
    toInt64(sum(p.spans)) AS spans,
    toInt64(any(k.traces)) AS traces,
    toInt64(any(k.services)) AS services,
    toInt64(countIf(p.traces > 1 OR p.services > 1)) AS recurring_values
FROM per_value AS p
INNER JOIN per_key AS k ON k.key = p.key
GROUP BY p.key
ORDER BY recurring_values DESC, traces DESC, key
LIMIT $limit

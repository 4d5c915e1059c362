SELECT DISTINCT trace_id, key, value FROM (
    SELECT lower(TraceId) AS trace_id, toString(kv.1) AS key, kv.2 AS value
    FROM @table
    ARRAY JOIN arrayConcat(
        arrayFilter(x -> has($keys, x.1) AND x.2 != '',
                    arrayZip(mapKeys(SpanAttributes), mapValues(SpanAttributes))),
        arrayFilter(x -> has($keys, x.1) AND x.2 != '',
                    arrayZip(mapKeys(ResourceAttributes), mapValues(ResourceAttributes)))
    ) AS kv
    WHERE TraceId IN $trace_ids
)
ORDER BY trace_id, key, value

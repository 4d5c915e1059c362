-- Each trace's entity keys with their distinct values, sorted.
SELECT trace_id, key, arraySort(groupUniqArray(value)) AS trace_values
FROM (
    SELECT lower(TraceId) AS trace_id, toString(kv.1) AS key, kv.2 AS value
    FROM @table
    ARRAY JOIN @otel_entity_pairs AS kv
    WHERE TraceId IN $trace_ids
)
GROUP BY trace_id, key
ORDER BY trace_id, key

-- otel_trace_entities.sql for the traces' spans starting in [lo, hi] only: the bound
-- confines the scan to those days' partitions (and a failure report's entities to the
-- spans its rows are made of).
SELECT trace_id, key, arraySort(groupUniqArray(value)) AS trace_values
FROM (
    SELECT lower(TraceId) AS trace_id, toString(kv.1) AS key, kv.2 AS value
    FROM @table
    ARRAY JOIN @otel_entity_pairs AS kv
    WHERE TraceId IN $trace_ids
      AND Timestamp >= fromUnixTimestamp64Nano(toInt64($lo))
      AND Timestamp <= fromUnixTimestamp64Nano(toInt64($hi))
)
GROUP BY trace_id, key
ORDER BY trace_id, key

-- trace -> entity key -> its sorted distinct values, for these traces.
SELECT lower(hex(trace_id)) AS trace_id, key, list_sort(list(DISTINCT value)) AS trace_values
FROM span_entities
WHERE trace_id IN (SELECT unnest($trace_ids::BLOB[]))
GROUP BY ALL
ORDER BY trace_id, key

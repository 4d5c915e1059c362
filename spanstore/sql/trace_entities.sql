SELECT DISTINCT lower(hex(trace_id)) AS trace_id, key, value
FROM span_entities
WHERE trace_id IN (SELECT unnest($trace_ids::BLOB[]))
ORDER BY trace_id, key, value

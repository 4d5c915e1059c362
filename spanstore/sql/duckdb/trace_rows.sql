SELECT trace_id, span_id, parent_span_id, resource_id, scope_id, raw
FROM spans
WHERE trace_id = $trace_id
ORDER BY start_unix_nano, span_id

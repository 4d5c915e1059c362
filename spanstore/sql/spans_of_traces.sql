SELECT s.trace_id, s.span_id, s.parent_span_id, s.resource_id, s.scope_id, s.service_name, s.raw
FROM spans AS s
WHERE s.trace_id IN (SELECT unnest($trace_ids::BLOB[]))
ORDER BY s.start_unix_nano, s.span_id

-- The spans of the given traces. $lo/$hi bound where they are searched: trace ids are
-- random, so only the start-time bounds let zone maps skip the rest of the store.
SELECT s.trace_id, s.span_id, s.parent_span_id, s.resource_id, s.scope_id, s.service_name, s.raw
FROM spans AS s
WHERE s.trace_id IN (SELECT unnest($trace_ids::BLOB[]))
  AND s.start_unix_nano BETWEEN $lo AND $hi
ORDER BY s.start_unix_nano, s.span_id

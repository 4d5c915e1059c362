-- Every span of the given traces as stored (ids, resource and scope keys, raw protobuf),
-- for `seqtrace replay`. $lo/$hi bound where they are (the traces' known extent): trace
-- ids are random, so only start-time bounds let zone maps skip the rest of the store.
SELECT trace_id, span_id, parent_span_id, resource_id, scope_id, raw
FROM spans
WHERE trace_id IN (SELECT unnest($trace_ids::BLOB[]))
  AND start_unix_nano BETWEEN $lo AND $hi
ORDER BY start_unix_nano, span_id

-- Every span of the given traces as stored (ids, resource and scope keys, raw protobuf)
-- within [$lo, $hi] (the traces' known extent), for `seqtrace replay`; a span written
-- twice (the table is not deduplicated on insert) comes once.
SELECT trace_id, span_id, parent_span_id, resource_id, scope_id, raw
FROM seqtrace_spans
WHERE (intDiv(start_unix_nano, 3600000000000), trace_id) IN (@trace_hours)
  AND start_unix_nano BETWEEN $lo AND $hi
ORDER BY start_unix_nano, span_id
LIMIT 1 BY trace_id, span_id

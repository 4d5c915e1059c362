-- The (hour, trace_id) pairs from the trace index are a prefix of the sorting key, so
-- only the granules of these traces are read, whatever the retention. $lo/$hi: the
-- caller's bounds on where the spans start (SpanReader.spans).
SELECT trace_id, span_id, parent_span_id, resource_id, scope_id, service_name, raw
FROM seqtrace_spans
WHERE (intDiv(start_unix_nano, 3600000000000), trace_id) IN (@trace_hours)
  AND start_unix_nano BETWEEN $lo AND $hi
ORDER BY start_unix_nano, span_id
LIMIT 1 BY trace_id, span_id

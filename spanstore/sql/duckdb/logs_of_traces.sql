-- The log records of the given traces, in time order. $lo/$hi bound where they are
-- searched (trace ids are random: only the time bounds let zone maps skip the rest).
SELECT l.trace_id, l.span_id, l.time_unix_nano, l.observed_unix_nano, l.time_unset,
       l.severity_number, l.severity_text, l.service_name, l.resource_id, l.scope_id,
       l.flags, l.event_name, l.raw
FROM logs AS l
WHERE l.trace_id IN (SELECT unnest($trace_ids::BLOB[]))
  AND l.time_unix_nano BETWEEN $lo AND $hi
ORDER BY l.time_unix_nano, l.observed_unix_nano

-- Log records in [$lo, $hi), optionally of one service, at least a severity, and only
-- those outside any trace; the newest $limit, returned in time order.
SELECT * FROM (
    SELECT l.trace_id, l.span_id, l.time_unix_nano, l.observed_unix_nano, l.time_unset,
           l.severity_number, l.severity_text, l.service_name, l.resource_id, l.scope_id,
           l.flags, l.event_name, l.raw
    FROM logs AS l
    WHERE l.time_unix_nano >= $lo AND l.time_unix_nano < $hi
      AND ($service IS NULL OR l.service_name = $service)
      AND l.severity_number >= $min_severity
      AND (NOT $without_trace OR l.trace_id IS NULL)
    ORDER BY l.time_unix_nano DESC
    LIMIT $limit
)
ORDER BY time_unix_nano, observed_unix_nano

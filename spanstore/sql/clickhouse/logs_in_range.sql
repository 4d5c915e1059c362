-- Log records in [$lo, $hi), optionally of one service, at least a severity, and only
-- those outside any trace; the newest $limit, returned in time order.
SELECT * FROM (
    SELECT trace_id, span_id, time_unix_nano, observed_unix_nano, time_unset,
           severity_number, severity_text, service_name, resource_id, scope_id,
           flags, event_name, raw
    FROM seqtrace_logs
    WHERE time_unix_nano >= $lo AND time_unix_nano < $hi
      AND ($service IS NULL OR service_name = $service)
      AND severity_number >= $min_severity
      AND (NOT $without_trace OR trace_id IS NULL)
    ORDER BY time_unix_nano DESC
    LIMIT $limit
)
ORDER BY time_unix_nano, observed_unix_nano

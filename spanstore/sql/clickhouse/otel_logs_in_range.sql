-- otel_logs records in [$lo, $hi), optionally of one service, at least a severity, and
-- only those outside any trace (empty TraceId); the newest $limit, in time order.
SELECT * FROM (
    SELECT
        if(TraceId = '', NULL, lower(TraceId)) AS trace_id,
        if(SpanId = '', NULL, lower(SpanId)) AS span_id,
        toUnixTimestamp64Nano(Timestamp) AS time_unix_nano,
        toUnixTimestamp64Nano(Timestamp) AS observed_unix_nano,
        toInt32(SeverityNumber) AS severity_number,
        toString(SeverityText) AS severity_text,
        toString(ServiceName) AS service_name,
        toUInt32(TraceFlags) AS flags,
        toString(@event_name) AS event_name,
        Body AS body,
        CAST(LogAttributes, 'Map(String, String)') AS attributes,
        CAST(ResourceAttributes, 'Map(String, String)') AS resource_attributes,
        toString(ScopeName) AS scope_name,
        toString(ScopeVersion) AS scope_version
    FROM @logs_table
    WHERE Timestamp >= fromUnixTimestamp64Nano(toInt64($lo))
      AND Timestamp < fromUnixTimestamp64Nano(toInt64($hi))
      AND ($service IS NULL OR ServiceName = $service)
      AND SeverityNumber >= $min_severity
      AND (NOT $without_trace OR TraceId = '')
    ORDER BY Timestamp DESC
    LIMIT $limit
)
ORDER BY time_unix_nano

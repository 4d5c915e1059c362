-- otel_logs records in [$lo, $hi), optionally of one service, at least a severity, and
-- only those outside any trace (empty TraceId); the newest $limit, in time order.
SELECT * FROM (
    SELECT @otel_log_columns
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

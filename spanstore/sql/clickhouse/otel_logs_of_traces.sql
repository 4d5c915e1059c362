-- The OpenTelemetry exporter's otel_logs records of these traces (hex TraceId), in time
-- order within $lo/$hi (columns: see otel_log_columns.sql).
SELECT @otel_log_columns
FROM @logs_table
WHERE TraceId IN $trace_ids
  AND Timestamp BETWEEN fromUnixTimestamp64Nano(toInt64($lo))
                    AND fromUnixTimestamp64Nano(toInt64($hi))
ORDER BY time_unix_nano

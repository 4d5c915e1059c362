-- How many otel_logs records there are, and how many of them belong to no trace.
SELECT toInt64(count()) AS logs, toInt64(countIf(TraceId = '')) AS without_trace
FROM @logs_table

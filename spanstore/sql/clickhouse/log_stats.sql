-- How many log records are stored, and how many of them belong to no trace.
SELECT toInt64(count()) AS logs, toInt64(countIf(trace_id IS NULL)) AS without_trace
FROM seqtrace_logs

-- The span frame of the given traces straight from otel_traces (columns:
-- otel_frame_columns.sql), their spans starting in [lo, hi), one row per (TraceId, SpanId).
SELECT
    @frame_columns
FROM @table
WHERE TraceId IN $trace_ids
  AND Timestamp >= fromUnixTimestamp64Nano(toInt64($lo))
  AND Timestamp < fromUnixTimestamp64Nano(toInt64($hi))
ORDER BY trace_id, start_unix_nano
LIMIT 1 BY TraceId, SpanId

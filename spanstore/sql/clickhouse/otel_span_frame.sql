-- The span frame straight from otel_traces (columns: otel_frame_columns.sql). Whole
-- traces are searched within a margin of the range ([lo, hi)), as span_frame.sql.
WITH in_range AS (
    SELECT DISTINCT TraceId
    FROM @table
    WHERE Timestamp >= fromUnixTimestamp64Nano(toInt64($start))
      AND Timestamp < fromUnixTimestamp64Nano(toInt64($end))
      AND ($service IS NULL OR ServiceName = $service)
)
SELECT
    @frame_columns
FROM @table
WHERE Timestamp >= fromUnixTimestamp64Nano(toInt64($lo))
  AND Timestamp < fromUnixTimestamp64Nano(toInt64($hi))
  AND (
    ($whole_traces AND TraceId IN (SELECT TraceId FROM in_range))
    OR (NOT $whole_traces
        AND Timestamp >= fromUnixTimestamp64Nano(toInt64($start))
        AND Timestamp < fromUnixTimestamp64Nano(toInt64($end))
        AND ($service IS NULL OR ServiceName = $service))
  )
ORDER BY trace_id, start_unix_nano
LIMIT 1 BY TraceId, SpanId

-- The service map's figures straight from otel_traces (as service_map.sql), over the span
-- frame's columns (otel_frame_columns.sql; one row per (TraceId, SpanId)).
WITH s AS (
    SELECT
        @frame_columns
    FROM @table
    WHERE Timestamp >= fromUnixTimestamp64Nano(toInt64($start))
      AND Timestamp < fromUnixTimestamp64Nano(toInt64($end))
    LIMIT 1 BY TraceId, SpanId
)
@service_map_figures

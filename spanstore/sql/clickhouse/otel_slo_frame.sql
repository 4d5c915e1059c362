-- What an SLO report needs (as slo_frame.sql), from otel_traces: the SLO event candidates
-- in [start, end) and every span of the traces where one meets an error, within [lo, hi).
WITH frame AS (
    SELECT
        @frame_columns
    FROM @table
    WHERE Timestamp >= fromUnixTimestamp64Nano(toInt64($lo))
      AND Timestamp < fromUnixTimestamp64Nano(toInt64($hi))
    LIMIT 1 BY TraceId, SpanId
),
events AS (
    SELECT trace_id, span_id
    FROM frame
    WHERE start_unix_nano >= $start AND start_unix_nano < $end
      AND service_name IN $services
      AND (
        name IN $operations
        OR http_route IN $operations
        OR rpc_method IN $operations
        OR concat(http_method, ' ', http_route) IN $operations
        OR concat(rpc_service, '/', rpc_method) IN $operations
      )
)
SELECT *
FROM frame
WHERE (trace_id, span_id) IN (SELECT trace_id, span_id FROM events)
   OR trace_id IN (
        SELECT DISTINCT trace_id FROM frame
        WHERE (status_code = 'ERROR' OR http_status_code >= 400)
          AND trace_id IN (SELECT trace_id FROM events)
   )
ORDER BY trace_id, start_unix_nano

-- The newest root spans with each trace's span and error counts (as recent_traces.sql).
WITH roots AS (
    SELECT
        TraceId AS r_trace_id,
        if(ServiceName = '', 'unknown_service', toString(ServiceName)) AS r_service,
        toString(SpanName) AS r_name,
        toUnixTimestamp64Nano(Timestamp) AS r_start,
        toInt64(Duration) AS r_duration,
        @status AS r_status
    FROM @table
    WHERE ParentSpanId = ''
    ORDER BY Timestamp DESC, TraceId
    LIMIT 1 BY TraceId, SpanId
    LIMIT $limit
),
counts AS (
    SELECT
        TraceId AS c_trace_id,
        toInt64(uniqExact(SpanId)) AS c_spans,
        toInt64(uniqExactIf(SpanId, @status = 'ERROR')) AS c_errors
    FROM @table
    WHERE Timestamp BETWEEN
            fromUnixTimestamp64Nano((SELECT toInt64(min(r_start)) - 3600000000000 FROM roots))
        AND fromUnixTimestamp64Nano((SELECT toInt64(max(r_start)) + 86400000000000 FROM roots))
      AND TraceId IN (SELECT r_trace_id FROM roots)
    GROUP BY TraceId
)
SELECT
    lower(r_trace_id) AS trace_id,
    r_service AS service_name,
    r_name AS name,
    r_start AS start_unix_nano,
    r_duration AS duration_ns,
    r_status AS status_code,
    if(c_trace_id = r_trace_id, c_spans, 1) AS spans,
    if(c_trace_id = r_trace_id, c_errors, 0) AS errors
FROM roots
LEFT JOIN counts ON c_trace_id = r_trace_id
ORDER BY r_start DESC

-- What an SLO report reads, narrow (as slo_spans.sql), from otel_traces: event rows (the
-- SLO candidates in [start, end)) and tree rows (every span in [lo, hi) of the traces where
-- a candidate meets a possible error). Keys are the lowercase hex ids, "trace:span". Ids
-- are renamed in `events` (an alias is visible in the whole SELECT).
WITH frame AS (
    SELECT
        @frame_columns
    FROM @table
    WHERE Timestamp >= fromUnixTimestamp64Nano(toInt64($lo))
      AND Timestamp < fromUnixTimestamp64Nano(toInt64($hi))
    LIMIT 1 BY TraceId, SpanId
),
events AS (
    SELECT trace_id AS tid, span_id AS sid, parent_span_id AS pid, *
    FROM frame
    WHERE start_unix_nano >= $start AND start_unix_nano < $end
      AND service_name IN $services
      AND @slo_operation
)
SELECT
    true AS event,
    CAST(tid AS Nullable(String)) AS trace_id,
    concat(tid, ':', sid) AS span_key,
    if(pid IS NULL, NULL, concat(tid, ':', assumeNotNull(pid))) AS parent_key,
    CAST(service_name AS Nullable(String)) AS service_name,
    CAST(name AS Nullable(String)) AS name,
    kind,
    CAST(start_unix_nano AS Nullable(Int64)) AS start_unix_nano,
    CAST(end_unix_nano AS Nullable(Int64)) AS end_unix_nano,
    status_code,
    CAST(status_message AS Nullable(String)) AS status_message,
    CAST(exception_type AS Nullable(String)) AS exception_type,
    CAST(exception_message AS Nullable(String)) AS exception_message,
    CAST(http_method AS Nullable(String)) AS http_method,
    CAST(http_route AS Nullable(String)) AS http_route,
    CAST(rpc_service AS Nullable(String)) AS rpc_service,
    CAST(rpc_method AS Nullable(String)) AS rpc_method,
    CAST(http_status_code AS Nullable(Int64)) AS http_status_code
FROM events
UNION ALL
SELECT
    false,
    CAST(NULL AS Nullable(String)),
    concat(trace_id, ':', span_id),
    if(parent_span_id IS NULL, NULL, concat(trace_id, ':', assumeNotNull(parent_span_id))),
    CAST(NULL AS Nullable(String)),
    CAST(NULL AS Nullable(String)),
    kind,
    CAST(NULL AS Nullable(Int64)),
    CAST(NULL AS Nullable(Int64)),
    status_code,
    if(status_code = 'ERROR' OR http_status_code >= 400,
       CAST(status_message AS Nullable(String)), NULL),
    if(status_code = 'ERROR' OR http_status_code >= 400,
       CAST(exception_type AS Nullable(String)), NULL),
    if(status_code = 'ERROR' OR http_status_code >= 400,
       CAST(exception_message AS Nullable(String)), NULL),
    CAST(NULL AS Nullable(String)),
    CAST(NULL AS Nullable(String)),
    CAST(NULL AS Nullable(String)),
    CAST(NULL AS Nullable(String)),
    CAST(http_status_code AS Nullable(Int64))
FROM frame
WHERE trace_id IN (
    SELECT DISTINCT trace_id FROM frame
    WHERE (status_code = 'ERROR' OR http_status_code >= 400)
      AND trace_id IN (SELECT tid FROM events)
)

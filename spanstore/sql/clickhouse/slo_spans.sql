-- What an SLO report reads, narrow (as spanstore/sql/slo_spans.sql; spanstore/frame.py
-- SLO_SPANS_SCHEMA): event rows, the SLO candidates in [start, end) (as slo_events.sql),
-- and tree rows, every span in [lo, hi) of the traces where a candidate meets a possible
-- error (status ERROR or an HTTP code >= 400), with keys (trace id || span id, raw bytes)
-- and only what decides whether the span is an error. FINAL: a raced duplicate row must
-- not count as a second event. Ids are renamed in `events`: an alias is visible
-- in the whole SELECT, so `trace_id` there would be the hex text.
WITH events AS (
    SELECT trace_id AS tid, span_id AS sid, parent_span_id AS pid, service_name, name, kind, start_unix_nano,
        duration_ns, status_code, status_message, exception_type, exception_message,
        http_method, http_route, rpc_service, rpc_method, http_status_code
    FROM seqtrace_spans FINAL
    WHERE start_unix_nano >= $start AND start_unix_nano < $end
      AND service_name IN $services
      AND @slo_operation
)
SELECT
    true AS event,
    CAST(lower(hex(tid)) AS Nullable(String)) AS trace_id,
    concat(tid, sid) AS span_key,
    concat(tid, pid) AS parent_key,
    CAST(toString(service_name) AS Nullable(String)) AS service_name,
    CAST(toString(name) AS Nullable(String)) AS name,
    multiIf(kind = 1, 'INTERNAL', kind = 2, 'SERVER', kind = 3, 'CLIENT',
        kind = 4, 'PRODUCER', kind = 5, 'CONSUMER', 'UNSPECIFIED') AS kind,
    CAST(start_unix_nano AS Nullable(Int64)) AS start_unix_nano,
    CAST(start_unix_nano + duration_ns AS Nullable(Int64)) AS end_unix_nano,
    multiIf(status_code = 1, 'OK', status_code = 2, 'ERROR', 'UNSET') AS status_code,
    CAST(ifNull(status_message, '') AS Nullable(String)) AS status_message,
    CAST(exception_type AS Nullable(String)) AS exception_type,
    exception_message,
    CAST(http_method AS Nullable(String)) AS http_method,
    CAST(http_route AS Nullable(String)) AS http_route,
    CAST(rpc_service AS Nullable(String)) AS rpc_service,
    CAST(rpc_method AS Nullable(String)) AS rpc_method,
    http_status_code
FROM events
UNION ALL
SELECT
    false,
    CAST(NULL AS Nullable(String)),
    concat(trace_id, span_id),
    concat(trace_id, parent_span_id),
    CAST(NULL AS Nullable(String)),
    CAST(NULL AS Nullable(String)),
    multiIf(kind = 1, 'INTERNAL', kind = 2, 'SERVER', kind = 3, 'CLIENT',
        kind = 4, 'PRODUCER', kind = 5, 'CONSUMER', 'UNSPECIFIED'),
    CAST(NULL AS Nullable(Int64)),
    CAST(NULL AS Nullable(Int64)),
    multiIf(status_code = 1, 'OK', status_code = 2, 'ERROR', 'UNSET'),
    if(status_code = 2 OR http_status_code >= 400, ifNull(status_message, ''), NULL),
    if(status_code = 2 OR http_status_code >= 400, CAST(exception_type AS Nullable(String)), NULL),
    if(status_code = 2 OR http_status_code >= 400, exception_message, NULL),
    CAST(NULL AS Nullable(String)),
    CAST(NULL AS Nullable(String)),
    CAST(NULL AS Nullable(String)),
    CAST(NULL AS Nullable(String)),
    http_status_code
FROM seqtrace_spans FINAL
WHERE start_unix_nano >= $lo AND start_unix_nano < $hi
  AND trace_id IN (
    SELECT DISTINCT trace_id
    FROM seqtrace_spans
    WHERE start_unix_nano >= $lo AND start_unix_nano < $hi
      AND (status_code = 2 OR http_status_code >= 400)
      AND trace_id IN (SELECT tid FROM events)
  )

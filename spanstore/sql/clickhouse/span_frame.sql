-- Spans of every trace with a span in [start, end), optionally only traces touching a
-- service (as spanstore/sql/span_frame.sql). Whole traces are searched within a margin
-- of the range ([lo, hi)); FINAL keeps a raced duplicate from counting twice. The inner
-- query filters on the stored columns, the outer one names the frame's columns (an
-- alias must not shadow a column that a WHERE clause means).
SELECT
    lower(hex(s_trace_id)) AS trace_id,
    lower(hex(s_span_id)) AS span_id,
    if(s_parent IS NULL, NULL, lower(hex(assumeNotNull(s_parent)))) AS parent_span_id,
    toString(service_name) AS service_name,
    toString(name) AS name,
    multiIf(kind = 1, 'INTERNAL', kind = 2, 'SERVER', kind = 3, 'CLIENT',
        kind = 4, 'PRODUCER', kind = 5, 'CONSUMER', 'UNSPECIFIED') AS kind,
    start_unix_nano,
    start_unix_nano + duration_ns AS end_unix_nano,
    duration_ns,
    multiIf(status_code = 1, 'OK', status_code = 2, 'ERROR', 'UNSET') AS status_code,
    ifNull(status_message, '') AS status_message,
    exception_type, exception_message,
    http_method, http_route, url_path, rpc_system, rpc_service, rpc_method,
    db_system, db_name, db_operation, peer_service, server_address,
    messaging_system, messaging_destination, messaging_operation,
    http_status_code
FROM (
    SELECT
        trace_id AS s_trace_id, span_id AS s_span_id, parent_span_id AS s_parent,
        service_name, name, kind, start_unix_nano, duration_ns, status_code,
        status_message, exception_type, exception_message,
        http_method, http_route, url_path, rpc_system, rpc_service, rpc_method,
        db_system, db_name, db_operation, peer_service, server_address,
        messaging_system, messaging_destination, messaging_operation,
        http_status_code
    FROM seqtrace_spans FINAL
    WHERE start_unix_nano >= $lo AND start_unix_nano < $hi
      AND (
        ($whole_traces AND trace_id IN (
            SELECT DISTINCT trace_id
            FROM seqtrace_spans
            WHERE start_unix_nano >= $start AND start_unix_nano < $end
              AND ($service IS NULL OR service_name = $service)
        ))
        OR (NOT $whole_traces AND start_unix_nano >= $start AND start_unix_nano < $end
            AND ($service IS NULL OR service_name = $service))
      )
)
ORDER BY s_trace_id, start_unix_nano

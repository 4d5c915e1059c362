-- The span frame's columns (included as a part by span_frame.sql and
-- traces_frame.sql, which add the inner query's WHERE and close it): ids are renamed
-- inside, as an alias must not shadow a column that a WHERE clause means.
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

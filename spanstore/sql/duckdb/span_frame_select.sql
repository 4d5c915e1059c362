-- The span frame's columns (included as a part by span_frame.sql and
-- traces_frame.sql, which add their WHERE): one row per span of `spans AS s`.
SELECT
    lower(hex(s.trace_id)) AS trace_id,
    lower(hex(s.span_id)) AS span_id,
    lower(hex(s.parent_span_id)) AS parent_span_id,
    s.service_name,
    s.name,
    CASE s.kind WHEN 1 THEN 'INTERNAL' WHEN 2 THEN 'SERVER' WHEN 3 THEN 'CLIENT'
        WHEN 4 THEN 'PRODUCER' WHEN 5 THEN 'CONSUMER' ELSE 'UNSPECIFIED' END AS kind,
    s.start_unix_nano,
    s.start_unix_nano + s.duration_ns AS end_unix_nano,
    s.duration_ns,
    CASE s.status_code WHEN 1 THEN 'OK' WHEN 2 THEN 'ERROR' ELSE 'UNSET' END AS status_code,
    coalesce(s.status_message, '') AS status_message,
    s.exception_type,
    s.exception_message,
    s.http_method, s.http_route, s.url_path, s.rpc_system, s.rpc_service, s.rpc_method,
    s.db_system, s.db_name, s.db_operation, s.peer_service, s.server_address,
    s.messaging_system, s.messaging_destination, s.messaging_operation,
    s.http_status_code
FROM spans AS s

-- What an SLO report needs, and no more: the spans that may be SLO events (the services'
-- spans whose name, route or RPC method matches an operation, in [start, end)), plus every
-- span of the traces where such a span meets an error (status ERROR or an HTTP error code),
-- so the report can tell which good events had a failure beneath them. On a 10M-span
-- store this is a few hundred thousand rows instead of the whole window.
WITH events AS (
    SELECT rowid AS rid, trace_id
    FROM spans
    WHERE start_unix_nano >= $start AND start_unix_nano < $end
      AND service_name IN (SELECT unnest($services::VARCHAR[]))
      AND (
        name IN (SELECT unnest($operations::VARCHAR[]))
        OR http_route IN (SELECT unnest($operations::VARCHAR[]))
        OR rpc_method IN (SELECT unnest($operations::VARCHAR[]))
        OR (http_method || ' ' || http_route) IN (SELECT unnest($operations::VARCHAR[]))
        OR (rpc_service || '/' || rpc_method) IN (SELECT unnest($operations::VARCHAR[]))
      )
),
troubled AS (
    SELECT DISTINCT s.trace_id
    FROM spans AS s
    WHERE s.start_unix_nano >= $start - $margin AND s.start_unix_nano < $end + $margin
      AND (s.status_code = 2 OR s.http_status_code >= 400)
      AND s.trace_id IN (SELECT trace_id FROM events)
)
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
WHERE s.start_unix_nano >= $start - $margin AND s.start_unix_nano < $end + $margin
  AND (s.rowid IN (SELECT rid FROM events) OR s.trace_id IN (SELECT trace_id FROM troubled))
ORDER BY s.trace_id, s.start_unix_nano

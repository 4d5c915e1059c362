-- Spans of every trace with a span in [start, end), optionally only traces touching a
-- service. Whole traces are searched within `margin` of the range: a trace longer than
-- that is cut at the margin (one hour by default).
WITH in_range AS (
    SELECT DISTINCT trace_id
    FROM spans
    WHERE start_unix_nano >= $start AND start_unix_nano < $end
      AND ($service IS NULL OR service_name = $service)
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
  AND (
    ($whole_traces AND s.trace_id IN (SELECT trace_id FROM in_range))
    OR (NOT $whole_traces AND s.start_unix_nano >= $start AND s.start_unix_nano < $end
        AND ($service IS NULL OR s.service_name = $service))
  )
ORDER BY s.trace_id, s.start_unix_nano

SELECT trace_id, span_id
FROM seqtrace_spans
WHERE start_unix_nano >= $start AND start_unix_nano < $end
  AND service_name IN $services
  AND (
    name IN $operations
    OR http_route IN $operations
    OR rpc_method IN $operations
    OR concat(http_method, ' ', http_route) IN $operations
    OR concat(rpc_service, '/', rpc_method) IN $operations
  )

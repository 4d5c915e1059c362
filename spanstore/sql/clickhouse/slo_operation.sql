-- Whether a span is one of an SLO's $operations: its name, http.route, rpc.method,
-- "METHOD route" or "service/method" (slo_spans.sql and otel_slo_spans.sql: @slo_operation).
(
    name IN $operations
    OR http_route IN $operations
    OR rpc_method IN $operations
    OR concat(http_method, ' ', http_route) IN $operations
    OR concat(rpc_service, '/', rpc_method) IN $operations
)

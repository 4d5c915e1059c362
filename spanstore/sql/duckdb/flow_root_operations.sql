-- The root operations (spans without a parent) starting in [start, end): per service and
-- operation (route, RPC method or name, as the diagram labels them), the traces and the
-- share whose root failed; busiest first. The Flows page lists them to pick from.
SELECT
    service_name AS service,
    coalesce(
        http_method || ' ' || http_route,
        rpc_service || '/' || rpc_method,
        name
    ) AS operation,
    count(*) AS traces,
    count(*) FILTER (WHERE status_code = 2) AS failed
FROM spans
WHERE start_unix_nano >= $start AND start_unix_nano < $end AND parent_span_id IS NULL
GROUP BY ALL
ORDER BY traces DESC, service, operation
LIMIT $limit

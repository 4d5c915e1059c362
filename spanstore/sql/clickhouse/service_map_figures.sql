-- The service map's rows (duckdb/service_map.sql: 'edge', 'peer', 'service'; the rules are
-- analyzer/servicemap.py's) from `s`, the range's spans in the span frame's columns, which
-- the including query defines. quantileExactInclusive interpolates between the two middle
-- values, as polars' median does.
, e AS (
    SELECT
        trace_id, span_id, parent_span_id, toString(service_name) AS service_name, kind,
        start_unix_nano, duration_ns AS duration, messaging_destination AS destination,
        peer_service, server_address, rpc_service, db_system, db_name, messaging_system,
        if(status_code = 'ERROR'
                OR (status_code = 'UNSET'
                    AND ifNull((kind = 'CLIENT' AND http_status_code >= 400)
                        OR (kind = 'SERVER' AND http_status_code >= 500), false)),
            NOT (ifNull(match(exception_type, $cancel_type), false)
                OR ifNull(match(status_message, $cancel_message), false)
                OR ifNull(match(exception_message, $cancel_message), false)
                OR ifNull(http_status_code = 499, false)),
            false) AS error
    FROM s
),
cross_calls AS (
    SELECT
        c.trace_id AS trace_id, c.span_id AS span_id, p.span_id AS parent_id,
        p.service_name AS p_service, c.service_name AS service_name, p.kind AS p_kind,
        c.kind AS kind, c.error AS error, p.error AS p_error, c.duration AS duration,
        p.duration AS p_duration, coalesce(c.destination, p.destination) AS queue,
        p.kind = 'PRODUCER' AND c.kind = 'CONSUMER' AND queue IS NOT NULL AS via_queue
    FROM e AS c
    INNER JOIN e AS p ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id
    WHERE p.service_name != c.service_name
),
calls AS (
    SELECT p_service AS src, service_name AS dst, 'service' AS dst_kind, 0 AS part,
        NULL AS trace_id, NULL AS start_unix_nano,
        error OR (p_kind IN ('CLIENT', 'PRODUCER') AND p_error) AS error,
        if(p_kind IN ('CLIENT', 'PRODUCER'), p_duration, duration) AS duration
    FROM cross_calls WHERE NOT via_queue
    UNION ALL
    SELECT p_service, queue, 'queue', 1, NULL, NULL, p_error, p_duration
    FROM cross_calls WHERE via_queue
    UNION ALL
    SELECT queue, service_name, 'service', 2, NULL, NULL, error, duration
    FROM cross_calls WHERE via_queue
    UNION ALL
    SELECT
        service_name,
        multiIf(peer_service IN (SELECT service_name FROM e), peer_service,
            server_address IN (SELECT service_name FROM e), server_address,
            peer_kind = 'queue', coalesce(destination, peer_service, messaging_system),
            peer_kind = 'database', coalesce(peer_service, server_address,
                if(match(db_name, '^[0-9]+$'), NULL, db_name), db_system),
            coalesce(peer_service, rpc_service, server_address)),
        multiIf(destination IS NOT NULL OR messaging_system IS NOT NULL OR kind = 'PRODUCER',
            'queue', db_system IS NOT NULL, 'database', 'external') AS peer_kind,
        3, trace_id, start_unix_nano, error, duration
    FROM e
    WHERE kind IN ('CLIENT', 'PRODUCER')
      AND (trace_id, span_id) NOT IN (SELECT trace_id, parent_id FROM cross_calls)
    UNION ALL
    SELECT destination, service_name, 'service', 4, NULL, NULL, error, duration
    FROM e
    WHERE kind = 'CONSUMER' AND destination IS NOT NULL
      AND (trace_id, span_id) NOT IN (
        SELECT trace_id, span_id FROM cross_calls WHERE via_queue)
),
kept AS (
    SELECT * FROM calls WHERE src IS NOT NULL AND dst IS NOT NULL
)
SELECT * FROM (
SELECT
    'edge' AS row, toNullable(toString(src)) AS from_id, toString(dst) AS to_id,
    CAST(NULL, 'Nullable(String)') AS kind,
    toInt64(count()) AS calls, toInt64(countIf(error)) AS errors,
    toNullable(toFloat64(quantileExactInclusive(0.5)(duration))) AS median_ns
FROM kept
GROUP BY src, dst
UNION ALL
SELECT
    'peer', CAST(NULL, 'Nullable(String)'), toString(dst),
    toNullable(if(countIf(part = 1) > 0, 'queue',
        argMinIf(dst_kind, tuple(trace_id, start_unix_nano), part = 3))),
    toInt64(count()), toInt64(countIf(error)), CAST(NULL, 'Nullable(Float64)')
FROM kept
WHERE dst NOT IN (SELECT service_name FROM e)
GROUP BY dst
UNION ALL
SELECT
    'service', CAST(NULL, 'Nullable(String)'), service_name, toNullable('service'),
    toInt64(count()), toInt64(countIf(error)), CAST(NULL, 'Nullable(Float64)')
FROM e
GROUP BY service_name
)

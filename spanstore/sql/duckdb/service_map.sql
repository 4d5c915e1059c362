-- The service map's figures for the spans starting in [start, end), aggregated in the store
-- (analyzer/servicemap.py states the rules and this follows them one for one; its frame path
-- is the reference the tests compare with). Rows, in no order:
-- * row 'edge': one per (from, to) call pair: calls, errors, median_ns (the median of the
--   durations the caller saw, interpolated between the two middle values as polars' median);
-- * row 'peer': one per call target that is no service of the range: its kind (queue when a
--   producer's span delivered to it, else the peer kind of its first call in
--   (trace id, start) order, as the frame path's first), calls and errors as `spans`/`errors`;
-- * row 'service': one per service: its spans and errors.
-- $cancel_type / $cancel_message: analyzer.failures' cancellation patterns (a cancelled
-- call is no error).
WITH s AS MATERIALIZED (
    SELECT
        trace_id, span_id, parent_span_id, service_name, kind, start_unix_nano,
        duration_ns AS duration,
        messaging_destination AS destination,
        -- The patterns are tested only on the few spans that are errors otherwise.
        CASE WHEN status_code = 2
                OR (status_code NOT IN (1, 2)
                    AND coalesce((kind = 3 AND http_status_code >= 400)
                        OR (kind = 2 AND http_status_code >= 500), false))
            THEN NOT (
                coalesce(regexp_matches(exception_type, $cancel_type), false)
                OR coalesce(regexp_matches(coalesce(status_message, ''), $cancel_message), false)
                OR coalesce(regexp_matches(exception_message, $cancel_message), false)
                OR coalesce(http_status_code = 499, false))
            ELSE false END AS error,
        peer_service, server_address, rpc_service, db_system, db_name, messaging_system
    FROM spans
    WHERE start_unix_nano >= $start AND start_unix_nano < $end
),
known AS (
    SELECT DISTINCT service_name FROM s
),
cross_calls AS MATERIALIZED (
    SELECT
        c.trace_id, c.span_id, p.span_id AS parent_id,
        p.service_name AS p_service, c.service_name, p.kind AS p_kind, c.kind,
        c.error, p.error AS p_error, c.duration, p.duration AS p_duration,
        coalesce(c.destination, p.destination) AS queue,
        p.kind = 4 AND c.kind = 5 AND coalesce(c.destination, p.destination) IS NOT NULL
            AS via_queue
    FROM s AS c
    JOIN s AS p ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id
    WHERE p.service_name <> c.service_name
),
peer_calls AS (
    SELECT
        s.*,
        CASE WHEN destination IS NOT NULL OR messaging_system IS NOT NULL OR kind = 4
                THEN 'queue'
            WHEN db_system IS NOT NULL THEN 'database'
            ELSE 'external' END AS peer_kind
    FROM s
    WHERE kind IN (3, 4)
      AND NOT EXISTS (
        SELECT 1 FROM cross_calls AS x
        WHERE x.trace_id = s.trace_id AND x.parent_id = s.span_id
      )
),
calls AS (
    SELECT p_service AS src, service_name AS dst, 'service' AS dst_kind, 0 AS part,
        NULL::BLOB AS trace_id, NULL::BIGINT AS start_unix_nano,
        error OR (p_kind IN (3, 4) AND p_error) AS error,
        CASE WHEN p_kind IN (3, 4) THEN p_duration ELSE duration END AS duration
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
        CASE WHEN peer_service IN (SELECT service_name FROM known) THEN peer_service
            WHEN server_address IN (SELECT service_name FROM known) THEN server_address
            WHEN peer_kind = 'queue'
                THEN coalesce(destination, peer_service, messaging_system)
            WHEN peer_kind = 'database' THEN coalesce(peer_service, server_address,
                CASE WHEN regexp_full_match(db_name, '\d+') THEN NULL ELSE db_name END,
                db_system)
            ELSE coalesce(peer_service, rpc_service, server_address) END,
        peer_kind, 3, trace_id, start_unix_nano, error, duration
    FROM peer_calls
    UNION ALL
    SELECT destination, service_name, 'service', 4, NULL, NULL, error, duration
    FROM s
    WHERE kind = 5 AND destination IS NOT NULL
      AND NOT EXISTS (
        SELECT 1 FROM cross_calls AS x
        WHERE x.via_queue AND x.trace_id = s.trace_id AND x.span_id = s.span_id
      )
),
kept AS MATERIALIZED (
    SELECT * FROM calls WHERE src IS NOT NULL AND dst IS NOT NULL
)
SELECT
    'edge' AS row, src AS from_id, dst AS to_id, NULL AS kind,
    count(*) AS calls, count(*) FILTER (WHERE error) AS errors,
    quantile_cont(duration, 0.5)::DOUBLE AS median_ns
FROM kept
GROUP BY src, dst
UNION ALL
SELECT
    'peer', NULL, dst,
    CASE WHEN bool_or(part = 1) THEN 'queue'
        ELSE arg_min(dst_kind, (trace_id, start_unix_nano)) END,
    count(*), count(*) FILTER (WHERE error), NULL
FROM kept
WHERE dst NOT IN (SELECT service_name FROM known)
GROUP BY dst
UNION ALL
SELECT 'service', NULL, service_name, 'service', count(*), count(*) FILTER (WHERE error), NULL
FROM s
GROUP BY service_name

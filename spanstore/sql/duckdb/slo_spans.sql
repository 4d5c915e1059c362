-- What an SLO report reads, narrow (spanstore/frame.py SLO_SPANS_SCHEMA), in one scan of
-- the SLOs' candidates and one of the troubled traces:
--   * event rows: the services' spans whose name, route or RPC method matches an operation,
--     in [start, end), with the columns that decide
--     which SLO they belong to and whether they are good;
--   * tree rows: every span, within a margin of the range, of the traces where such a span
--     meets a possible error (status ERROR or an HTTP code >= 400): only keys and what
--     decides whether the span is an error, for the walk up from errors to the events.
-- Ids travel as raw bytes (trace || span): no hex text for a million ids. Only event rows
-- carry the trace id in hex (for the affected entities), and only possible errors their
-- status message and exception (the rest cannot be errors, whatever those say). Kind and
-- status stay the stored codes (spanstore.rows.slo_spans_frame names them: cheaper than
-- CASE). Services are matched with list_contains, not IN (SELECT unnest(...)), which
-- planned a semi join after the scan: twice as slow (docs/performance.md).
WITH events AS MATERIALIZED (
    SELECT trace_id, span_id, parent_span_id, service_name, name, kind, start_unix_nano,
        duration_ns, status_code, status_message, exception_type, exception_message,
        http_method, http_route, rpc_service, rpc_method, http_status_code
    FROM spans
    WHERE start_unix_nano >= $start AND start_unix_nano < $end
      AND list_contains($services::VARCHAR[], service_name)
      AND (
        list_contains($operations::VARCHAR[], name)
        OR list_contains($operations::VARCHAR[], http_route)
        OR list_contains($operations::VARCHAR[], rpc_method)
        OR list_contains($operations::VARCHAR[], http_method || ' ' || http_route)
        OR list_contains($operations::VARCHAR[], rpc_service || '/' || rpc_method)
      )
),
troubled AS (
    SELECT DISTINCT trace_id
    FROM spans
    WHERE start_unix_nano >= $start - $margin AND start_unix_nano < $end + $margin
      AND (status_code = 2 OR http_status_code >= 400)
      AND trace_id IN (SELECT trace_id FROM events)
)
SELECT
    true AS event,
    lower(hex(trace_id)) AS trace_id,
    trace_id || span_id AS span_key,
    trace_id || parent_span_id AS parent_key,
    service_name,
    name,
    kind,
    start_unix_nano,
    start_unix_nano + duration_ns AS end_unix_nano,
    status_code,
    coalesce(status_message, '') AS status_message,
    exception_type,
    exception_message,
    http_method, http_route, rpc_service, rpc_method,
    http_status_code
FROM events
UNION ALL
SELECT
    false,
    NULL,
    trace_id || span_id,
    trace_id || parent_span_id,
    NULL,
    NULL,
    kind,
    NULL,
    NULL,
    status_code,
    CASE WHEN status_code = 2 OR http_status_code >= 400 THEN coalesce(status_message, '') END,
    CASE WHEN status_code = 2 OR http_status_code >= 400 THEN exception_type END,
    CASE WHEN status_code = 2 OR http_status_code >= 400 THEN exception_message END,
    NULL, NULL, NULL, NULL,
    http_status_code
FROM spans
WHERE start_unix_nano >= $start - $margin AND start_unix_nano < $end + $margin
  AND trace_id IN (SELECT trace_id FROM troubled)

-- The failure report's counting pass (analyzer/failures_store.py), in the store: how many
-- traces the report covers, and the few spans of theirs that may be errors, instead of every
-- span of the range.
-- A trace is covered when its root starts in [start, end): the earliest span without a parent
-- (a missing, empty or all-zero parent id), else its earliest span (by start, then span id:
-- analyzer.failures picks it so), among its spans in [lo, hi) (whole traces are searched that
-- far, as span_frame.sql does); with $service, only traces with a span of that service
-- starting in [start, end) (the traces span_frame.sql reads). A trace without a span in
-- [start, end) cannot have its root there, so no other condition is needed.
-- Rows: one per span of a covered trace that may be an error (status ERROR, or an HTTP code
-- that analyzer.failures.error_expr counts; it decides the rest, cancellations, in Python,
-- on these rows only), in the span frame's spellings, with `is_root` and its trace's
-- `root_start`; every row carries `traces`, the number of covered traces, and when no span
-- may be an error, one row of nulls carries it alone. Each row also carries its trace's fingerprint over [lo, hi):
-- `trace_spans`, `first_start`, `last_start` and `span_hash` (its span ids' hashes xor-ed),
-- which change whenever a span of the trace enters or leaves that range (a report keeps a
-- listed trace's row while its fingerprint stays the same, analyzer/failures_store.py).
-- A parentless span: no parent id, or an empty or all-zero one (tested as text only where the
-- id does not compare above eight zero bytes, as every real id does: hex() per span is dear).
-- The possible errors are read by two scans whose filters the scan applies itself (an OR
-- across two columns is applied after every column of every span was read): the ERROR
-- spans, and the UNSET ones whose HTTP code can make them errors (a CLIENT span's 4xx or
-- 5xx, a SERVER span's 5xx; an OK status is never overridden). Rows in no order.
-- The root is found in two steps, each cheap for millions of spans: per trace the start of
-- its earliest parentless span (else of its earliest span), with plain minimums; then, only
-- for the traces where a possible error starts then and so may be the root, the lowest span
-- id of their spans of the root's kind starting then (ties are rare, but decided as the
-- analysis decides them).
WITH per_trace AS (
    SELECT
        trace_id,
        min(start_unix_nano) FILTER (WHERE CASE WHEN parent_span_id IS NULL THEN true
                WHEN parent_span_id > '\x00\x00\x00\x00\x00\x00\x00\x00'::BLOB THEN false
                ELSE ltrim(hex(parent_span_id), '0') = '' END) AS rooted_start,
        min(start_unix_nano) AS first_start,
        max(start_unix_nano) AS last_start,
        count(*) AS trace_spans,
        bit_xor(hash(span_id)) AS span_hash,
        bool_or(
            $service IS NULL
            OR (service_name = $service
                AND start_unix_nano >= $start AND start_unix_nano < $end)
        ) AS touches
    FROM spans
    WHERE start_unix_nano >= $lo AND start_unix_nano < $hi
    GROUP BY trace_id
),
covered AS MATERIALIZED (
    SELECT
        trace_id,
        coalesce(rooted_start, first_start) AS root_start,
        rooted_start IS NOT NULL AS rooted,
        first_start, last_start, trace_spans, span_hash
    FROM per_trace
    WHERE touches
      AND coalesce(rooted_start, first_start) >= $start
      AND coalesce(rooted_start, first_start) < $end
),
possible AS MATERIALIZED (
    SELECT
        s.trace_id, s.span_id, s.service_name, s.kind, s.status_code, s.status_message,
        s.exception_type, s.exception_message, s.http_status_code,
        c.root_start, c.first_start, c.last_start, c.trace_spans, c.span_hash,
        s.start_unix_nano = c.root_start
            AND (CASE WHEN s.parent_span_id IS NULL THEN true
                WHEN s.parent_span_id > '\x00\x00\x00\x00\x00\x00\x00\x00'::BLOB THEN false
                ELSE ltrim(hex(s.parent_span_id), '0') = '' END) = c.rooted
            AS may_be_root
    FROM (
        SELECT * FROM spans
        WHERE start_unix_nano >= $lo AND start_unix_nano < $hi AND status_code = 2
        UNION ALL
        SELECT * FROM spans
        WHERE start_unix_nano >= $lo AND start_unix_nano < $hi AND status_code NOT IN (1, 2)
          AND http_status_code >= 400 AND (kind = 3 OR (kind = 2 AND http_status_code >= 500))
    ) AS s
    JOIN covered AS c ON s.trace_id = c.trace_id
),
root_ids AS (
    SELECT x.trace_id, min(x.span_id) AS root_span_id
    FROM spans AS x
    JOIN (
        SELECT DISTINCT p.trace_id, p.root_start, c.rooted
        FROM possible AS p JOIN covered AS c ON p.trace_id = c.trace_id
        WHERE p.may_be_root
    ) AS r ON x.trace_id = r.trace_id AND x.start_unix_nano = r.root_start
    WHERE x.start_unix_nano >= $lo AND x.start_unix_nano < $hi
      AND (CASE WHEN x.parent_span_id IS NULL THEN true
            WHEN x.parent_span_id > '\x00\x00\x00\x00\x00\x00\x00\x00'::BLOB THEN false
            ELSE ltrim(hex(x.parent_span_id), '0') = '' END) = r.rooted
    GROUP BY x.trace_id
)
SELECT
    n.traces,
    lower(hex(p.trace_id)) AS trace_id,
    lower(hex(p.span_id)) AS span_id,
    p.service_name,
    CASE p.kind WHEN 1 THEN 'INTERNAL' WHEN 2 THEN 'SERVER' WHEN 3 THEN 'CLIENT'
        WHEN 4 THEN 'PRODUCER' WHEN 5 THEN 'CONSUMER' ELSE 'UNSPECIFIED' END AS kind,
    CASE p.status_code WHEN 1 THEN 'OK' WHEN 2 THEN 'ERROR' ELSE 'UNSET' END AS status_code,
    coalesce(p.status_message, '') AS status_message,
    p.exception_type,
    p.exception_message,
    p.http_status_code,
    coalesce(p.may_be_root AND p.span_id = r.root_span_id, false) AS is_root,
    p.root_start,
    p.trace_spans,
    p.first_start,
    p.last_start,
    p.span_hash
FROM (SELECT count(*) AS traces FROM covered) AS n
LEFT JOIN (possible AS p LEFT JOIN root_ids AS r ON p.trace_id = r.trace_id) ON true

-- The failure report's per-trace pass, a part of failure_candidates.sql and
-- failure_traces.sql (each starts its WITH with it). Each trace's rows depend on its own
-- spans in [lo, hi) alone. What each CTE is: failure_candidates.sql.
per_trace AS (
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

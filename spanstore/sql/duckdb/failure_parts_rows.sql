-- The rows of failure_parts.sql, failure_parts_of.sql and failure_parts_committed.sql
-- (after their CTEs `picked`, the spans with a `stored` flag and their row id `rid`, and
-- `position`): what analyzer/failures_store.py keeps per
-- trace and merges with the rows of later calls. Rows of three kinds (`row_kind`):
-- 'trace': per trace and `stored`, counts that merge: the earliest parentless span (a
--   missing, empty or all-zero parent id) as (start, span id) (the lower id first among
--   spans starting together, as analyzer.failures picks a root), the first start (and
--   where no span is parentless, the lowest id of the spans starting then), the last
--   start, how many spans and their span ids' hashes xor-ed; and the lowest and highest
--   row id (`rid`: negative for the rows not committed yet), outside which none of the
--   trace's spans lie (the report reads the spans of the traces it lists there only);
-- 'span': each span that may be an error (status ERROR, or an HTTP code that
--   analyzer.failures.error_expr counts: failure_candidates.sql), in the span frame's
--   spellings;
-- 'position': one row, `next_rowid`.
-- Trace and span ids as lower-case hex (their order is the bytes' order).
per_trace AS (
    SELECT
        trace_id,
        stored,
        min({'s': start_unix_nano, 'i': span_id}) FILTER (WHERE
            CASE WHEN parent_span_id IS NULL THEN true
                WHEN parent_span_id > '\x00\x00\x00\x00\x00\x00\x00\x00'::BLOB THEN false
                ELSE ltrim(hex(parent_span_id), '0') = '' END) AS rooted,
        min(start_unix_nano) AS first_start,
        max(start_unix_nano) AS last_start,
        count(*) AS trace_spans,
        min(rid) AS first_rowid,
        max(rid) AS last_rowid,
        bit_xor(hash(span_id)) AS span_hash
    FROM picked
    GROUP BY trace_id, stored
),
-- The earliest span's id matters only where no span is parentless (the root is then the
-- earliest span): found for those traces alone, by a second look at their start.
unrooted AS (
    SELECT p.trace_id, p.stored, min(s.span_id) AS first_id
    FROM picked AS s
    JOIN per_trace AS p
      ON s.trace_id = p.trace_id AND s.stored = p.stored AND s.start_unix_nano = p.first_start
    WHERE p.rooted IS NULL
    GROUP BY p.trace_id, p.stored
),
-- Two scans whose filters the scan applies itself (failure_candidates.sql: an OR across
-- two columns is applied after every column of every span was read).
possible AS (
    SELECT * FROM picked WHERE status_code = 2
    UNION ALL
    SELECT * FROM picked
    WHERE status_code NOT IN (1, 2) AND http_status_code >= 400
      AND (kind = 3 OR (kind = 2 AND http_status_code >= 500))
)
SELECT
    'trace' AS row_kind,
    lower(hex(p.trace_id)) AS trace_id,
    p.stored,
    p.rooted.s AS rooted_start,
    lower(hex(p.rooted.i)) AS rooted_id,
    p.first_start,
    lower(hex(u.first_id)) AS first_id,
    p.last_start,
    p.trace_spans,
    p.span_hash,
    p.first_rowid,
    p.last_rowid,
    NULL::VARCHAR AS span_id,
    NULL::VARCHAR AS service_name,
    NULL::VARCHAR AS kind,
    NULL::VARCHAR AS status_code,
    NULL::VARCHAR AS status_message,
    NULL::VARCHAR AS exception_type,
    NULL::VARCHAR AS exception_message,
    NULL::BIGINT AS http_status_code,
    NULL::BIGINT AS next_rowid
FROM per_trace AS p
LEFT JOIN unrooted AS u ON u.trace_id = p.trace_id AND u.stored = p.stored
UNION ALL
SELECT
    'span', lower(hex(trace_id)), stored, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    lower(hex(span_id)),
    service_name,
    CASE kind WHEN 1 THEN 'INTERNAL' WHEN 2 THEN 'SERVER' WHEN 3 THEN 'CLIENT'
        WHEN 4 THEN 'PRODUCER' WHEN 5 THEN 'CONSUMER' ELSE 'UNSPECIFIED' END,
    CASE status_code WHEN 1 THEN 'OK' WHEN 2 THEN 'ERROR' ELSE 'UNSET' END,
    coalesce(status_message, ''),
    exception_type,
    exception_message,
    http_status_code,
    NULL
FROM possible
UNION ALL
SELECT
    'position', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NULL, NULL, NULL, NULL, NULL, next_rowid
FROM position

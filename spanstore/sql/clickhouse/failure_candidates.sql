-- The failure report's counting pass, as spanstore/sql/duckdb/failure_candidates.sql: the
-- traces whose root starts in [start, end) (their spans searched in [lo, hi)), with $service
-- only those with a span of it in [start, end), and the spans of theirs that may be errors.
-- The roots need no FINAL (a raced duplicate row changes no minimum); the possible errors do
-- (a duplicate would count twice). A WITH subquery would be run once per use here, so the
-- number of covered traces rides on each row as a window count, and a covered trace without
-- a possible error keeps a row only when it is the first (the count must come back even when
-- no span may be an error); `matched` tells such rows (the join's defaults are not nulls).
-- Each row also carries its trace's fingerprint over [lo, hi) (see the DuckDB file); a
-- raced duplicate changes it, which only makes the report analyse the trace again.
SELECT
    c.traces AS traces,
    if(p.matched = 1, lower(hex(c.tid)), NULL) AS trace_id,
    if(p.matched = 1, lower(hex(p.sid)), NULL) AS span_id,
    if(p.matched = 1, toString(p.service), NULL) AS service_name,
    if(p.matched = 1, multiIf(p.kind = 1, 'INTERNAL', p.kind = 2, 'SERVER', p.kind = 3, 'CLIENT',
        p.kind = 4, 'PRODUCER', p.kind = 5, 'CONSUMER', 'UNSPECIFIED'), NULL) AS kind,
    if(p.matched = 1, multiIf(p.status = 1, 'OK', p.status = 2, 'ERROR', 'UNSET'), NULL)
        AS status_code,
    if(p.matched = 1, ifNull(p.message, ''), NULL) AS status_message,
    if(p.matched = 1, p.exc_type, NULL) AS exception_type,
    if(p.matched = 1, p.exc_message, NULL) AS exception_message,
    if(p.matched = 1, p.http, NULL) AS http_status_code,
    if(p.matched = 1, p.sid = c.root_sid, NULL) AS is_root,
    if(p.matched = 1, c.root_start, NULL) AS root_start,
    if(p.matched = 1, c.trace_spans, NULL) AS trace_spans,
    if(p.matched = 1, c.first_start, NULL) AS first_start,
    if(p.matched = 1, c.last_start, NULL) AS last_start,
    if(p.matched = 1, c.span_hash, NULL) AS span_hash
FROM (
    SELECT tid, root_start, root_sid, trace_spans, first_start, last_start, span_hash,
        count() OVER () AS traces,
        row_number() OVER () AS nth
    FROM (
        SELECT
            trace_id AS tid,
            min(tuple(
                NOT (parent_span_id IS NULL
                     OR replaceAll(hex(assumeNotNull(parent_span_id)), '0', '') = ''),
                start_unix_nano,
                span_id
            )) AS root,
            tupleElement(root, 2) AS root_start,
            tupleElement(root, 3) AS root_sid,
            count() AS trace_spans,
            min(start_unix_nano) AS first_start,
            max(start_unix_nano) AS last_start,
            groupBitXor(cityHash64(span_id)) AS span_hash,
            countIf($service IS NULL
                OR (service_name = $service
                    AND start_unix_nano >= $start AND start_unix_nano < $end)) > 0 AS touches
        FROM seqtrace_spans
        WHERE start_unix_nano >= $lo AND start_unix_nano < $hi
        GROUP BY trace_id
    )
    WHERE touches AND root_start >= $start AND root_start < $end
) AS c
LEFT JOIN (
    SELECT
        toUInt8(1) AS matched,
        trace_id AS ptid,
        span_id AS sid,
        service_name AS service,
        kind,
        status_code AS status,
        status_message AS message,
        exception_type AS exc_type,
        exception_message AS exc_message,
        http_status_code AS http
    FROM seqtrace_spans FINAL
    WHERE start_unix_nano >= $lo AND start_unix_nano < $hi
      AND (status_code = 2 OR http_status_code >= 400)
) AS p ON p.ptid = c.tid
WHERE p.matched = 1 OR c.nth = 1
ORDER BY trace_id, span_id

-- The failure report's counting pass straight from otel_traces (as failure_candidates.sql):
-- the traces whose root starts in [start, end) (spans searched in [lo, hi); a root has an
-- empty or all-zero ParentSpanId), with $service only those with a span of it in
-- [start, end), and the spans of theirs that may be errors, in the frame's columns
-- (otel_frame_columns.sql; one row per (TraceId, SpanId): the exporter does not
-- de-duplicate). The count rides on each row as in failure_candidates.sql.
-- Each row carries its trace's fingerprint over [lo, hi) (duckdb/failure_candidates.sql).
SELECT
    c.traces AS traces,
    if(p.matched = 1, p.trace_id, NULL) AS trace_id,
    if(p.matched = 1, p.span_id, NULL) AS span_id,
    if(p.matched = 1, p.service_name, NULL) AS service_name,
    if(p.matched = 1, p.kind, NULL) AS kind,
    if(p.matched = 1, p.status_code, NULL) AS status_code,
    if(p.matched = 1, p.status_message, NULL) AS status_message,
    if(p.matched = 1, p.exception_type, NULL) AS exception_type,
    if(p.matched = 1, p.exception_message, NULL) AS exception_message,
    if(p.matched = 1, p.http_status_code, NULL) AS http_status_code,
    if(p.matched = 1, p.span_id = c.root_sid, NULL) AS is_root,
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
            TraceId AS tid,
            min(tuple(
                ParentSpanId != '' AND replaceAll(ParentSpanId, '0', '') != '',
                toUnixTimestamp64Nano(Timestamp),
                lower(SpanId)
            )) AS root,
            tupleElement(root, 2) AS root_start,
            tupleElement(root, 3) AS root_sid,
            count() AS trace_spans,
            min(toUnixTimestamp64Nano(Timestamp)) AS first_start,
            max(toUnixTimestamp64Nano(Timestamp)) AS last_start,
            groupBitXor(cityHash64(SpanId)) AS span_hash,
            countIf($service IS NULL
                OR (ServiceName = $service
                    AND Timestamp >= fromUnixTimestamp64Nano(toInt64($start))
                    AND Timestamp < fromUnixTimestamp64Nano(toInt64($end)))) > 0 AS touches
        FROM @table
        WHERE Timestamp >= fromUnixTimestamp64Nano(toInt64($lo))
          AND Timestamp < fromUnixTimestamp64Nano(toInt64($hi))
        GROUP BY TraceId
    )
    WHERE touches AND root_start >= $start AND root_start < $end
) AS c
LEFT JOIN (
    SELECT toUInt8(1) AS matched, ptid, trace_id, span_id, service_name, kind, status_code,
        status_message, exception_type, exception_message, http_status_code
    FROM (
        SELECT TraceId AS ptid, @frame_columns
        FROM @table
        WHERE Timestamp >= fromUnixTimestamp64Nano(toInt64($lo))
          AND Timestamp < fromUnixTimestamp64Nano(toInt64($hi))
        LIMIT 1 BY TraceId, SpanId
    )
    WHERE status_code = 'ERROR' OR http_status_code >= 400
) AS p ON p.ptid = c.tid
WHERE p.matched = 1 OR c.nth = 1
ORDER BY trace_id, span_id

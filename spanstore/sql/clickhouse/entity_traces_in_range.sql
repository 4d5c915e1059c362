-- ClickHouse port of spanstore/sql/entity_traces_in_range.sql (read that file's notes):
-- every value of one entity key with an entity span in [start, end), with its own traces
-- plus the traces linked to them (one hop, either end); one row per (value, trace), ordered
-- as the diagram orders traces (first span's start, then trace id). `shape` digests what
-- the diagram draws from the trace (cityHash64 here, DuckDB's hash there: a shape is
-- compared only with shapes from the same store), NULL when the spans' order is ambiguous
-- or a child on another resource sticks out of its parent; `span_ids` in the same order.
-- Used by `seqtrace contract check --key` (analyzer/contracts/fetch.py).
-- Spans are found through the trace index (as spans_of_traces.sql) and de-duplicated
-- (LIMIT 1 BY) before they are numbered: merges of re-sent spans are eventual.
WITH
direct AS (
    SELECT DISTINCT value, trace_id
    FROM seqtrace_entities
    WHERE key = $key AND start_unix_nano >= $start AND start_unix_nano < $end
),
every AS (
    SELECT value, trace_id FROM direct
    UNION DISTINCT
    SELECT d.value AS value, l.linked_trace_id AS trace_id
    FROM direct AS d INNER JOIN seqtrace_links AS l ON l.trace_id = d.trace_id
    UNION DISTINCT
    SELECT d.value AS value, l.trace_id AS trace_id
    FROM direct AS d INNER JOIN seqtrace_links AS l ON l.linked_trace_id = d.trace_id
),
unique_spans AS (
    SELECT
        trace_id, span_id, parent_span_id, resource_id, kind, duration_ns, start_unix_nano,
        start_unix_nano + duration_ns AS end_unix_nano,
        concatWithSeparator(char(31),
            toString(service_name), toString(name), toString(kind), toString(status_code),
            ifNull(http_method, ''), ifNull(coalesce(http_route, url_path), ''),
            ifNull(rpc_system, ''), ifNull(rpc_service, ''), ifNull(rpc_method, ''),
            ifNull(db_system, ''), ifNull(db_name, ''), ifNull(db_operation, ''),
            ifNull(peer_service, ''), ifNull(server_address, ''),
            ifNull(messaging_system, ''), ifNull(messaging_destination, ''),
            ifNull(messaging_operation, ''), ifNull(toString(http_status_code), ''),
            ifNull(exception_type, ''),
            if(status_code = 2,
               toString(cityHash64(concat(ifNull(status_message, ''), char(31),
                                          ifNull(exception_message, '')))),
               '')
        ) AS drawn
    FROM seqtrace_spans
    WHERE (intDiv(start_unix_nano, 3600000000000), trace_id) IN (
        SELECT
            arrayJoin(range(intDiv(min(first_start), 3600000000000),
                            intDiv(max(last_start), 3600000000000) + 1)) AS hour,
            trace_id
        FROM seqtrace_trace_index
        WHERE trace_id IN (SELECT trace_id FROM every)
        GROUP BY trace_id
    )
    LIMIT 1 BY trace_id, span_id
),
ordered AS (
    SELECT
        *,
        row_number() OVER (PARTITION BY trace_id ORDER BY start_unix_nano, span_id) AS pos,
        1 AS present
    FROM unique_spans
),
shapes AS (
    SELECT
        c.trace_id AS trace_id,
        min(c.start_unix_nano) AS trace_start,
        if(
            count() <> uniqExact(c.start_unix_nano)
            OR max(p.present = 1 AND p.resource_id <> c.resource_id AND (
                c.start_unix_nano < p.start_unix_nano
                OR (p.kind <> 4 AND c.kind <> 5 AND c.duration_ns <= p.duration_ns
                    AND c.end_unix_nano > p.end_unix_nano))) = 1,
            NULL,
            toString(cityHash64(arrayStringConcat(
                arrayMap(x -> x.2, arraySort(x -> x.1,
                    groupArray((c.pos, concat(toString(p.pos), char(30), c.drawn))))),
                char(29))))
        ) AS shape,
        arrayMap(x -> x.2, arraySort(x -> x.1,
            groupArray((c.pos, lower(hex(c.span_id)))))) AS span_ids
    FROM ordered AS c
    LEFT JOIN ordered AS p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
    GROUP BY c.trace_id
)
SELECT e.value AS value, lower(hex(e.trace_id)) AS trace_id, sh.trace_start AS trace_start,
       sh.shape AS shape, sh.span_ids AS span_ids
FROM every AS e
INNER JOIN shapes AS sh ON sh.trace_id = e.trace_id
ORDER BY value, trace_start, trace_id

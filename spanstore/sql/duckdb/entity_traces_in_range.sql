-- Every value of one entity key with an entity span in [start, end), with its traces: the
-- ones carrying the value in the range plus the traces linked to those by a span link (one
-- hop, either end), as an entity diagram draws them. One row per (value, trace), ordered as
-- the diagram orders traces (first span's start, then trace id).
-- Used by `seqtrace contract check --key` (analyzer/contracts/fetch.py), which also reads:
--   shape: a digest of what the diagram draws from the trace (per span, in start order: its
--     parent's position, service, name, kind, status and the semantic-convention columns;
--     for failed spans a digest of the error texts), so traces of one shape draw the same
--     calls; NULL when the spans' order is ambiguous (equal start times) or a child on
--     another resource (clock) sticks out of its parent, which the diagram's clock-skew
--     correction may move: such traces are never shared;
--   span_ids: the trace's span ids in that same order (to carry a finding over to another
--     trace of the same shape).
WITH direct AS (
    SELECT DISTINCT value, trace_id
    FROM span_entities
    WHERE key = $key AND start_unix_nano >= $start AND start_unix_nano < $end
),
linked AS (
    SELECT d.value, l.linked_trace_id AS trace_id
    FROM direct AS d JOIN span_links AS l ON l.trace_id = d.trace_id
    UNION
    SELECT d.value, l.trace_id
    FROM direct AS d JOIN span_links AS l ON l.linked_trace_id = d.trace_id
),
every AS (
    SELECT value, trace_id FROM direct
    UNION
    SELECT value, trace_id FROM linked
),
wanted AS MATERIALIZED (SELECT DISTINCT trace_id FROM every),
ordered AS MATERIALIZED (
    SELECT
        s.trace_id, s.span_id, s.parent_span_id, s.resource_id, s.kind, s.duration_ns,
        s.start_unix_nano,
        s.start_unix_nano + s.duration_ns AS end_unix_nano,
        row_number() OVER (PARTITION BY s.trace_id ORDER BY s.start_unix_nano, s.span_id) AS pos,
        concat_ws(chr(31),
            s.service_name, s.name, s.kind, s.status_code, s.http_method,
            coalesce(s.http_route, s.url_path), s.rpc_system, s.rpc_service, s.rpc_method,
            s.db_system, s.db_name, s.db_operation, s.peer_service, s.server_address,
            s.messaging_system, s.messaging_destination, s.messaging_operation,
            s.http_status_code, s.exception_type,
            CASE WHEN s.status_code = 2
                THEN hash(coalesce(s.status_message, '') || chr(31) || coalesce(s.exception_message, ''))
            END
        ) AS drawn
    FROM spans AS s
    WHERE s.trace_id IN (SELECT trace_id FROM wanted)
),
shapes AS (
    SELECT
        c.trace_id,
        min(c.start_unix_nano) AS trace_start,
        CASE
            WHEN count(*) <> count(DISTINCT c.start_unix_nano) THEN NULL
            WHEN bool_or(p.resource_id <> c.resource_id AND (
                c.start_unix_nano < p.start_unix_nano
                OR (p.kind <> 4 AND c.kind <> 5 AND c.duration_ns <= p.duration_ns
                    AND c.end_unix_nano > p.end_unix_nano))) THEN NULL
            ELSE hash(string_agg(coalesce(p.pos, 0) || chr(30) || c.drawn, chr(29) ORDER BY c.pos))::VARCHAR
        END AS shape,
        list(lower(hex(c.span_id)) ORDER BY c.pos) AS span_ids
    FROM ordered AS c
    LEFT JOIN ordered AS p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
    GROUP BY c.trace_id
)
SELECT e.value, lower(hex(e.trace_id)) AS trace_id, sh.trace_start, sh.shape, sh.span_ids
FROM every AS e
JOIN shapes AS sh ON sh.trace_id = e.trace_id
ORDER BY e.value, sh.trace_start, trace_id

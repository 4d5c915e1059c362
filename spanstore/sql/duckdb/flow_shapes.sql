-- The end of flow_root_shapes.sql and flow_trace_shapes.sql (included there as
-- @flow_shapes, after their `roots` and `wanted` CTEs): the CTE `shapes`, per trace of
-- `wanted`'s spans (`tid`, its id as stored): its outcome, duration, structure
-- fingerprint, per-span durations and error flags, and its span count (see
-- flow_root_shapes.sql for what the fingerprint is). `ordered` keeps each span's rowid
-- (`rid`), so that a query may read more of the spans it picks.
-- `wanted` gives each span's rowid, `trace_id` and start (`st`): its search read those two
-- columns already, and each column read again at the scattered rows of a busy entity
-- costs about as much as a scan of the row groups they are in (docs/performance.md, #16).
ordered AS MATERIALIZED (
    SELECT
        w.rid,
        w.trace_id, s.span_id, s.parent_span_id, s.resource_id, s.service_name, s.kind,
        s.duration_ns,
        w.st,
        w.st + s.duration_ns AS en,
        s.status_code = 2 AS err,
        row_number() OVER (PARTITION BY w.trace_id ORDER BY w.st, s.span_id) AS pos,
        hash(concat_ws(chr(31),
            s.service_name, s.name, s.kind, s.status_code, s.http_method,
            coalesce(s.http_route, s.url_path), s.rpc_system, s.rpc_service, s.rpc_method,
            s.db_system, s.db_name, s.db_operation, s.peer_service, s.server_address,
            s.messaging_system, s.messaging_destination, s.messaging_operation,
            s.http_status_code
        )) AS drawn
    FROM spans AS s
    JOIN wanted AS w ON w.rid = s.rowid
    WHERE s.rowid IN (SELECT rid FROM wanted)
),
starts_before_end AS (
    SELECT c.trace_id, c.pos, count(*) AS started_before_end
    FROM ordered AS c JOIN ordered AS o ON o.trace_id = c.trace_id AND o.st < c.en
    GROUP BY c.trace_id, c.pos
),
shapes AS MATERIALIZED (
    SELECT
        c.trace_id AS tid,
        min(c.st) AS start_unix_nano,
        max(c.en) - min(c.st) AS duration_ns,
        CASE
            WHEN bool_or(c.err AND c.parent_span_id IS NULL) THEN 'failed'
            WHEN bool_or(c.err) THEN 'partial'
            ELSE 'ok'
        END AS outcome,
        CASE
            WHEN count(*) <> count(DISTINCT c.st) THEN NULL
            WHEN bool_or(p.resource_id <> c.resource_id AND (
                c.st < p.st
                OR (p.kind <> 4 AND c.kind <> 5 AND c.duration_ns <= p.duration_ns AND c.en > p.en)))
                THEN NULL
            ELSE hash(string_agg(
                coalesce(p.pos, 0) || ':' || coalesce(v.started_before_end, 0) || ':' || c.drawn,
                ',' ORDER BY c.pos))::VARCHAR
        END AS fingerprint,
        list(c.duration_ns ORDER BY c.pos) AS durations,
        list(c.err ORDER BY c.pos) AS errors,
        count(*) AS spans
    FROM ordered AS c
    LEFT JOIN ordered AS p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
    LEFT JOIN starts_before_end AS v ON v.trace_id = c.trace_id AND v.pos = c.pos
    GROUP BY c.trace_id
)

-- The given traces, one row each, with what analyzer.flow folds them by: the columns of
-- flow_root_shapes.sql (fingerprint, durations, errors: see there) and `spans`, the trace's
-- span count. Spans are read from $lo to $hi (inclusive; the caller's bounds on where the
-- traces' spans can be, so zone maps keep the rest of the store out). Used by `flow
-- --entity/--key/--query` and by a busy entity's diagram, which turns only one trace per
-- fingerprint (and the failing ones) into span objects.
-- `span_rows`: with $with_spans, the stored rows (as spans_of_traces.sql reads them, in
-- start order) of the traces the caller turns into span objects, so that one search of
-- the store answers both: the first trace (start, id) of each fingerprint, every trace
-- without one, with $failing_spans every trace with an error span, and every trace when
-- they hold at most $whole_spans spans together. NULL for the others.
WITH roots AS MATERIALIZED (
    SELECT DISTINCT unnest($trace_ids::BLOB[]) AS trace_id
),
-- Found by the trace_id column alone, then read by rowid (see spans_of_traces.sql).
wanted AS MATERIALIZED (
    SELECT s.rowid AS rid
    FROM spans AS s
    WHERE s.trace_id IN (SELECT trace_id FROM roots)
      AND s.start_unix_nano BETWEEN $lo AND $hi
),
ordered AS MATERIALIZED (
    SELECT
        s.rowid AS rid,
        s.trace_id, s.span_id, s.parent_span_id, s.resource_id, s.kind, s.duration_ns,
        s.start_unix_nano AS st,
        s.start_unix_nano + s.duration_ns AS en,
        s.status_code = 2 AS err,
        row_number() OVER (PARTITION BY s.trace_id ORDER BY s.start_unix_nano, s.span_id) AS pos,
        hash(concat_ws(chr(31),
            s.service_name, s.name, s.kind, s.status_code, s.http_method,
            coalesce(s.http_route, s.url_path), s.rpc_system, s.rpc_service, s.rpc_method,
            s.db_system, s.db_name, s.db_operation, s.peer_service, s.server_address,
            s.messaging_system, s.messaging_destination, s.messaging_operation,
            s.http_status_code
        )) AS drawn
    FROM spans AS s
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
),
drawn AS MATERIALIZED (
    SELECT tid
    FROM (
        SELECT
            tid, outcome, fingerprint,
            row_number() OVER (
                PARTITION BY fingerprint ORDER BY start_unix_nano, tid
            ) AS nth,
            sum(spans) OVER () AS total
        FROM shapes
    )
    WHERE $with_spans AND (
        fingerprint IS NULL OR nth = 1
        OR ($failing_spans AND outcome <> 'ok')
        OR total <= $whole_spans
    )
),
stored AS (
    SELECT
        s.trace_id AS tid,
        list({
            'trace_id': s.trace_id, 'span_id': s.span_id, 'parent_span_id': s.parent_span_id,
            'resource_id': s.resource_id, 'scope_id': s.scope_id,
            'service_name': s.service_name, 'raw': s.raw
        } ORDER BY s.start_unix_nano, s.span_id) AS span_rows
    FROM spans AS s
    WHERE s.rowid IN (
        SELECT o.rid FROM ordered AS o WHERE o.trace_id IN (SELECT tid FROM drawn)
    )
    GROUP BY s.trace_id
)
SELECT
    lower(hex(h.tid)) AS trace_id,
    h.start_unix_nano, h.duration_ns, h.outcome, h.fingerprint, h.durations, h.errors,
    h.spans,
    r.span_rows
FROM shapes AS h
LEFT JOIN stored AS r ON r.tid = h.tid
ORDER BY h.start_unix_nano, trace_id

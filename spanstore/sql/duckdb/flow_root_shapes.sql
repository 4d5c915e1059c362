-- The traces whose root span (no parent) is SERVICE's OPERATION and starts in [start, end),
-- one row each, with what `seqtrace flow` folds them by (analyzer/flow/store.py):
--   fingerprint: a hash of the trace's structure: per span in start order, its parent's
--     position, the columns its arrow is drawn from (service, name, kind, status and the
--     semantic-convention columns) and how many of the trace's spans start before it ends
--     (which fixes how spans overlap, so which calls the diagram puts in `par` blocks).
--     Traces with one fingerprint draw one structure, so only one of them need be turned
--     into span objects. NULL when the spans' order is ambiguous (equal start times) or a
--     child on another resource (clock) sticks out of its parent, which the diagram's
--     clock-skew correction may move: such traces are never shared.
--   durations, errors: each span's duration and error flag, in that same order.
-- Spans are read from $start to $end + $margin, so zone maps keep the rest of the store out.
-- OPERATION matches the root's name, http.route, "METHOD route", rpc.method or
-- "service/method" (as SLO operations do).
WITH roots AS MATERIALIZED (
    SELECT trace_id
    FROM spans
    WHERE start_unix_nano >= $start AND start_unix_nano < $end
      AND parent_span_id IS NULL
      AND service_name = $service
      AND (
        name = $operation OR http_route = $operation OR rpc_method = $operation
        OR (http_method || ' ' || http_route) = $operation
        OR (rpc_service || '/' || rpc_method) = $operation
      )
),
-- Found by the trace_id column alone, then read by rowid (see spans_of_traces.sql).
wanted AS MATERIALIZED (
    SELECT s.rowid AS rid
    FROM spans AS s
    WHERE s.trace_id IN (SELECT trace_id FROM roots)
      AND s.start_unix_nano >= $start AND s.start_unix_nano < $end + $margin
),
ordered AS MATERIALIZED (
    SELECT
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
)
SELECT
    lower(hex(c.trace_id)) AS trace_id,
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
    list(c.err ORDER BY c.pos) AS errors
FROM ordered AS c
LEFT JOIN ordered AS p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
LEFT JOIN starts_before_end AS v ON v.trace_id = c.trace_id AND v.pos = c.pos
GROUP BY c.trace_id
ORDER BY start_unix_nano, trace_id

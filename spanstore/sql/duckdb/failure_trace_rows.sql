-- The failure report's rows per covered trace, a part of failure_traces.sql (after
-- failure_traces_ctes.sql): one row
-- per span of the trace that may be an error, in the span frame's spellings, with
-- `is_root`; a trace without such a span has one row whose span columns are null. Every
-- row carries its trace's `root_start` and fingerprint over [lo, hi): `trace_spans`,
-- `first_start`, `last_start` and `span_hash` (its span ids' hashes xor-ed), which change
-- whenever a span of the trace enters or leaves that range. Rows in no order.
SELECT
    lower(hex(c.trace_id)) AS trace_id,
    lower(hex(p.span_id)) AS span_id,
    p.service_name,
    CASE WHEN p.span_id IS NOT NULL THEN
        CASE p.kind WHEN 1 THEN 'INTERNAL' WHEN 2 THEN 'SERVER' WHEN 3 THEN 'CLIENT'
            WHEN 4 THEN 'PRODUCER' WHEN 5 THEN 'CONSUMER' ELSE 'UNSPECIFIED' END
    END AS kind,
    CASE WHEN p.span_id IS NOT NULL THEN
        CASE p.status_code WHEN 1 THEN 'OK' WHEN 2 THEN 'ERROR' ELSE 'UNSET' END
    END AS status_code,
    CASE WHEN p.span_id IS NOT NULL THEN coalesce(p.status_message, '') END AS status_message,
    p.exception_type,
    p.exception_message,
    p.http_status_code,
    CASE WHEN p.span_id IS NOT NULL THEN
        coalesce(p.may_be_root AND p.span_id = r.root_span_id, false)
    END AS is_root,
    c.root_start,
    c.trace_spans,
    c.first_start,
    c.last_start,
    c.span_hash
FROM covered AS c
LEFT JOIN (possible AS p LEFT JOIN root_ids AS r ON p.trace_id = r.trace_id)
    ON p.trace_id = c.trace_id

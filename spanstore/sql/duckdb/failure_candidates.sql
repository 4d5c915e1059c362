-- The failure report's counting pass (analyzer/failures_store.py), in the store: how many
-- traces the report covers, and the few spans of theirs that may be errors, instead of every
-- span of the range.
-- A trace is covered when its root starts in [start, end): the earliest span without a parent
-- (a missing, empty or all-zero parent id), else its earliest span (by start, then span id:
-- analyzer.failures picks it so), among its spans in [lo, hi) (whole traces are searched that
-- far, as span_frame.sql does); with $service, only traces with a span of that service
-- starting in [start, end) (the traces span_frame.sql reads). A trace without a span in
-- [start, end) cannot have its root there, so no other condition is needed.
-- Rows: one per span of a covered trace that may be an error (status ERROR, or an HTTP code
-- that analyzer.failures.error_expr counts; it decides the rest, cancellations, in Python,
-- on these rows only), in the span frame's spellings, with `is_root` and its trace's
-- `root_start`; every row carries `traces`, the number of covered traces, and when no span
-- may be an error, one row of nulls carries it alone. Each row also carries its trace's fingerprint over [lo, hi):
-- `trace_spans`, `first_start`, `last_start` and `span_hash` (its span ids' hashes xor-ed),
-- which change whenever a span of the trace enters or leaves that range (a report keeps a
-- listed trace's row while its fingerprint stays the same, analyzer/failures_store.py).
-- A parentless span: no parent id, or an empty or all-zero one (tested as text only where the
-- id does not compare above eight zero bytes, as every real id does: hex() per span is dear).
-- The possible errors are read by two scans whose filters the scan applies itself (an OR
-- across two columns is applied after every column of every span was read): the ERROR
-- spans, and the UNSET ones whose HTTP code can make them errors (a CLIENT span's 4xx or
-- 5xx, a SERVER span's 5xx; an OK status is never overridden). Rows in no order.
-- The root is found in two steps, each cheap for millions of spans: per trace the start of
-- its earliest parentless span (else of its earliest span), with plain minimums; then, only
-- for the traces where a possible error starts then and so may be the root, the lowest span
-- id of their spans of the root's kind starting then (ties are rare, but decided as the
-- analysis decides them).
WITH
@failure_traces_ctes
SELECT
    n.traces,
    lower(hex(p.trace_id)) AS trace_id,
    lower(hex(p.span_id)) AS span_id,
    p.service_name,
    CASE p.kind WHEN 1 THEN 'INTERNAL' WHEN 2 THEN 'SERVER' WHEN 3 THEN 'CLIENT'
        WHEN 4 THEN 'PRODUCER' WHEN 5 THEN 'CONSUMER' ELSE 'UNSPECIFIED' END AS kind,
    CASE p.status_code WHEN 1 THEN 'OK' WHEN 2 THEN 'ERROR' ELSE 'UNSET' END AS status_code,
    coalesce(p.status_message, '') AS status_message,
    p.exception_type,
    p.exception_message,
    p.http_status_code,
    coalesce(p.may_be_root AND p.span_id = r.root_span_id, false) AS is_root,
    p.root_start,
    p.trace_spans,
    p.first_start,
    p.last_start,
    p.span_hash
FROM (SELECT count(*) AS traces FROM covered) AS n
LEFT JOIN (possible AS p LEFT JOIN root_ids AS r ON p.trace_id = r.trace_id) ON true

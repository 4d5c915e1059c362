-- failure_traces.sql for the given traces only: what changed since a kept answer (new
-- spans, spans leaving [lo, hi) or a root entering [start, end)). Their spans in range are
-- found first (the trace_id and start columns alone), and the columns the pass reads are
-- taken once, as a CTE named `spans` that the pass reads in place of the table (inside
-- its own definition `spans` is still the table).
WITH
wanted AS MATERIALIZED (
    SELECT rowid AS rid
    FROM spans
    WHERE trace_id IN (SELECT unnest($trace_ids::BLOB[]))
      AND start_unix_nano >= $lo AND start_unix_nano < $hi
),
spans AS MATERIALIZED (
    SELECT
        trace_id, span_id, parent_span_id, service_name, kind, start_unix_nano,
        status_code, status_message, exception_type, exception_message, http_status_code
    FROM spans
    WHERE rowid IN (SELECT rid FROM wanted)
),
@failure_traces_ctes
@failure_trace_rows

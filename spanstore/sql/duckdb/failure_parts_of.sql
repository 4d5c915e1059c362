-- failure_parts.sql for the given traces only, whatever their row ids: every span of
-- theirs in [$lo, $hi) (a trace with a span where the range moved is counted again
-- whole, analyzer/failures_store.py). `stored`: committed below $next (the row id
-- failure_parts.sql gave; rows committed since are shown this once, as unseen ones).
-- Their spans are found first by the trace_id and start columns alone, as
-- spans_of_traces.sql finds them.
WITH
wanted AS MATERIALIZED (
    SELECT rowid AS rid
    FROM spans
    WHERE trace_id IN (SELECT unnest($trace_ids::BLOB[]))
      AND start_unix_nano >= $lo AND start_unix_nano < $hi
),
picked AS MATERIALIZED (
    SELECT
        trace_id, span_id, parent_span_id, service_name, kind, start_unix_nano, status_code,
        status_message, exception_type, exception_message, http_status_code,
        rowid >= 0 AND rowid < $next AS stored,
        rowid AS rid
    FROM spans
    WHERE rowid IN (SELECT rid FROM wanted)
),
position AS (SELECT $next::BIGINT AS next_rowid),
@failure_parts_rows

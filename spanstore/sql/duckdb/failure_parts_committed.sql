-- The failure report's counts of the spans committed at row id $since or later, whatever
-- their start (spanstore/failure_parts_log.py): the writer thread runs it on its own
-- connection right after a COMMIT, while a report watches, and keeps the rows for the
-- next reports, which merge them as failure_parts.sql's `stored` rows (a trace with a span
-- outside a report's searched range is counted again whole there). `next_rowid`: the row
-- id the next count starts at. DuckDB skips the row groups below $since.
WITH
picked AS NOT MATERIALIZED (
    SELECT
        trace_id, span_id, parent_span_id, service_name, kind, start_unix_nano, status_code,
        status_message, exception_type, exception_message, http_status_code,
        true AS stored,
        rowid AS rid
    FROM spans
    WHERE rowid >= $since
),
position AS (
    SELECT coalesce(max(rowid) + 1, $since) AS next_rowid FROM spans WHERE rowid >= $since
),
@failure_parts_rows

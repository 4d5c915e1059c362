-- The failure report's kept counts (analyzer/failures_store.py, KeptCounts), brought up to
-- date: the spans in [$lo, $hi) committed at row id $since or later (DuckDB skips the row
-- groups below it) and those not committed yet (negative row ids in the views of
-- spanstore/unseen.py), as failure_parts_rows.sql's rows, and the row id the next call
-- starts at. With $since 0 every span of the range: the counts from scratch.
-- Committed rows are `stored` (the caller keeps them: every committed row of this
-- snapshot has a row id below `next_rowid`); unseen rows are shown this once (they get
-- row ids of `next_rowid` or later when committed, and come again then).
WITH
-- Not materialized: each use reads only its own columns, filtered in the scan.
picked AS NOT MATERIALIZED (
    SELECT
        trace_id, span_id, parent_span_id, service_name, kind, start_unix_nano, status_code,
        status_message, exception_type, exception_message, http_status_code,
        rowid >= 0 AS stored,
        rowid AS rid
    FROM spans
    WHERE (rowid >= $since OR rowid < 0)
      AND start_unix_nano >= $lo AND start_unix_nano < $hi
),
position AS (
    SELECT coalesce(max(rowid) + 1, $since) AS next_rowid FROM spans WHERE rowid >= $since
),
@failure_parts_rows

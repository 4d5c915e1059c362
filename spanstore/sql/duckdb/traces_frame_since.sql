-- traces_frame.sql for traces none of whose spans lies below row id $from_rowid (the
-- failure report's kept counts know it: failure_parts' `first_rowid`): DuckDB skips the
-- row groups below it, so the newest traces of a busy hour are found in its last row
-- groups instead of every one. The rows not committed yet (negative row ids in the views
-- of spanstore/unseen.py) are read as before.
WITH wanted AS MATERIALIZED (
    SELECT rowid AS rid
    FROM spans
    WHERE (rowid >= $from_rowid OR rowid < 0)
      AND trace_id IN (SELECT unnest($trace_ids::BLOB[]))
      AND start_unix_nano >= $lo AND start_unix_nano < $hi
)
@span_frame_select
WHERE s.rowid IN (SELECT rid FROM wanted)
ORDER BY s.trace_id, s.start_unix_nano

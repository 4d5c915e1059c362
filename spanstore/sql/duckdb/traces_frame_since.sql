-- traces_frame.sql for traces whose committed spans lie within known row ids (the failure
-- report's kept counts know each trace's lowest and highest: failure_parts' `first_rowid`
-- and `last_rowid`): at most three ranges [$a_from, $a_to], [$b_from, $b_to] and
-- [$c_from, $c_to] (an unused one is empty), and everything committed from $tail on
-- (after the counts). DuckDB skips
-- the row groups outside, so the newest traces of a busy hour are found in its last row
-- groups instead of every one. The rows not committed yet (negative row ids in the views
-- of spanstore/unseen.py) are read as before.
WITH wanted AS MATERIALIZED (
    SELECT rowid AS rid
    FROM spans
    WHERE (rowid < 0 OR rowid >= $tail
           OR (rowid >= $a_from AND rowid <= $a_to)
           OR (rowid >= $b_from AND rowid <= $b_to)
           OR (rowid >= $c_from AND rowid <= $c_to))
      AND trace_id IN (SELECT unnest($trace_ids::BLOB[]))
      AND start_unix_nano >= $lo AND start_unix_nano < $hi
)
@span_frame_select
WHERE s.rowid IN (SELECT rid FROM wanted)
ORDER BY s.trace_id, s.start_unix_nano

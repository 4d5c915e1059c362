-- The span frame (span_frame.sql's columns) of the given traces, their spans starting in
-- [lo, hi): the failure report reads only the traces it lists (analyzer/failures_store.py).
-- Two steps, as spans_of_traces.sql: the rows are found by reading the trace_id and start
-- columns alone, and only those rows' other columns are read (by rowid). The listed traces'
-- spans are spread over the range's row groups; read in one scan, every frame column of
-- every span in the range was decompressed for the join (docs/performance.md, #20).
WITH wanted AS MATERIALIZED (
    SELECT rowid AS rid
    FROM spans
    WHERE trace_id IN (SELECT unnest($trace_ids::BLOB[]))
      AND start_unix_nano >= $lo AND start_unix_nano < $hi
)
@span_frame_select
WHERE s.rowid IN (SELECT rid FROM wanted)
ORDER BY s.trace_id, s.start_unix_nano

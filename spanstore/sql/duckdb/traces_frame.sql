-- The span frame (span_frame.sql's columns) of the given traces, their spans starting in
-- [lo, hi): the failure report reads only the traces it lists (analyzer/failures_store.py).
@span_frame_select
WHERE s.trace_id IN (SELECT unnest($trace_ids::BLOB[]))
  AND s.start_unix_nano >= $lo AND s.start_unix_nano < $hi
ORDER BY s.trace_id, s.start_unix_nano

-- The span frame (span_frame.sql's columns) of the given traces, their spans starting in
-- [lo, hi); FINAL keeps a raced duplicate from counting twice. Ids are renamed inside, as
-- in span_frame.sql (an alias must not shadow a column that a WHERE clause means).
@span_frame_select
    WHERE trace_id IN $trace_ids
      AND start_unix_nano >= $lo AND start_unix_nano < $hi
)
ORDER BY s_trace_id, start_unix_nano

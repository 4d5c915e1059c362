-- Spans of every trace with a span in [start, end), optionally only traces touching a
-- service (as spanstore/sql/span_frame.sql). Whole traces are searched within a margin
-- of the range ([lo, hi)); FINAL keeps a raced duplicate from counting twice. The inner
-- query filters on the stored columns, the outer one names the frame's columns (an
-- alias must not shadow a column that a WHERE clause means).
@span_frame_select
    WHERE start_unix_nano >= $lo AND start_unix_nano < $hi
      AND (
        ($whole_traces AND trace_id IN (
            SELECT DISTINCT trace_id
            FROM seqtrace_spans
            WHERE start_unix_nano >= $start AND start_unix_nano < $end
              AND ($service IS NULL OR service_name = $service)
        ))
        OR (NOT $whole_traces AND start_unix_nano >= $start AND start_unix_nano < $end
            AND ($service IS NULL OR service_name = $service))
      )
)
ORDER BY s_trace_id, start_unix_nano

-- Spans of every trace with a span in [start, end), optionally only traces touching a
-- service. Whole traces are searched within `margin` of the range: a trace longer than
-- that is cut at the margin (one hour by default).
WITH in_range AS (
    SELECT DISTINCT trace_id
    FROM spans
    WHERE start_unix_nano >= $start AND start_unix_nano < $end
      AND ($service IS NULL OR service_name = $service)
)
@span_frame_select
WHERE s.start_unix_nano >= $start - $margin AND s.start_unix_nano < $end + $margin
  AND (
    ($whole_traces AND s.trace_id IN (SELECT trace_id FROM in_range))
    OR (NOT $whole_traces AND s.start_unix_nano >= $start AND s.start_unix_nano < $end
        AND ($service IS NULL OR s.service_name = $service))
  )
ORDER BY s.trace_id, s.start_unix_nano

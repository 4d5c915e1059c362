-- Rows of the incoming batch whose (trace_id, span_id) is stored already. A re-sent span
-- keeps its start time, so the time bounds let zone maps skip all but a few row groups.
SELECT b.row_index
FROM batch_keys AS b
SEMI JOIN (
    SELECT trace_id, span_id
    FROM spans
    WHERE start_unix_nano BETWEEN $min_start AND $max_start
) AS s ON s.trace_id = b.trace_id AND s.span_id = b.span_id

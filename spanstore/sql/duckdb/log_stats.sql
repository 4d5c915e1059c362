-- How many log records are stored, and how many of them belong to no trace.
SELECT count(*) AS logs, count(*) FILTER (WHERE trace_id IS NULL) AS without_trace FROM logs

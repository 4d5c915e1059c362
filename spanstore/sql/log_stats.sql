-- How many log records are stored, and how many of them belong to no trace.
SELECT count(*), count(*) FILTER (WHERE trace_id IS NULL) FROM logs

-- The traces with a span starting in [a, b) (ids as stored): the failure report's kept
-- answer is brought up to date for them when its range moves (analyzer/failures_store.py).
SELECT DISTINCT trace_id
FROM spans
WHERE start_unix_nano >= $a AND start_unix_nano < $b

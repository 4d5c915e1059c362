-- The traces with a span starting in one of three ranges [a_from, a_to), [b_from, b_to),
-- [c_from, c_to) (ids as stored; an unused range is empty, from = to): the failure
-- report's kept counts are brought up to date for them when its range moves
-- (analyzer/failures_store.py).
SELECT DISTINCT trace_id
FROM spans
WHERE (start_unix_nano >= $a_from AND start_unix_nano < $a_to)
   OR (start_unix_nano >= $b_from AND start_unix_nano < $b_to)
   OR (start_unix_nano >= $c_from AND start_unix_nano < $c_to)

-- A prefix of the table's sorting key (key, value, start_unix_nano): a range read.
SELECT trace_id, min(start_unix_nano) AS first_start
FROM seqtrace_entities
WHERE key = $key AND value = $value
  AND start_unix_nano >= $start AND start_unix_nano < $end
GROUP BY trace_id
ORDER BY first_start, trace_id

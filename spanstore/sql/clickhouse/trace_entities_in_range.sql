-- trace_entities.sql for traces known to have spans in [lo, hi] (find's page): the
-- bound confines the scan to those days' partitions without the trace index.
SELECT trace_id, key, arraySort(groupUniqArray(value)) AS trace_values
FROM seqtrace_entities
WHERE trace_id IN $trace_ids
  AND start_unix_nano BETWEEN $lo AND $hi
GROUP BY trace_id, key
ORDER BY trace_id, key

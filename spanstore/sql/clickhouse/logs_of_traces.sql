-- The log records of the given traces, in time order, within $lo/$hi (the bloom filter
-- on trace_id skips granules of other traces). Columns as in the DuckDB file's query.
SELECT trace_id, span_id, time_unix_nano, observed_unix_nano, time_unset,
       severity_number, severity_text, service_name, resource_id, scope_id,
       flags, event_name, raw
FROM seqtrace_logs
WHERE time_unix_nano BETWEEN $lo AND $hi
  AND trace_id IN $trace_ids
ORDER BY time_unix_nano, observed_unix_nano

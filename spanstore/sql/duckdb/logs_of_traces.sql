-- The log records of the given traces, in time order. $lo/$hi bound where they are
-- searched (trace ids are random: only the time bounds let zone maps skip the rest).
-- Two steps in one statement: the matching rows' ids from the narrow columns, then the
-- wide ones (raw) of those rows only. Selecting every column with the trace id filter
-- read and decompressed `raw` for every row in the time range: 0.87 s against 0.12 s
-- for 10k of 830k records (bench/bench_logs.py, docs/performance.md "#18 logs").
WITH hits AS (
    SELECT rowid AS hit
    FROM logs
    WHERE time_unix_nano BETWEEN $lo AND $hi
      AND trace_id IN (SELECT unnest($trace_ids::BLOB[]))
)
SELECT l.trace_id, l.span_id, l.time_unix_nano, l.observed_unix_nano, l.time_unset,
       l.severity_number, l.severity_text, l.service_name, l.resource_id, l.scope_id,
       l.flags, l.event_name, l.raw
FROM logs AS l
WHERE l.time_unix_nano BETWEEN $lo AND $hi
  AND l.rowid IN (SELECT hit FROM hits)
ORDER BY l.time_unix_nano, l.observed_unix_nano

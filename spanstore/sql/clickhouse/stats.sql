-- FINAL: exact counts even before ReplacingMergeTree has merged away a raced duplicate.
SELECT
    toInt64(count()) AS spans,
    toInt64(uniqExact(trace_id)) AS traces,
    minOrNull(start_unix_nano) AS first_unix_nano,
    maxOrNull(start_unix_nano + duration_ns) AS last_unix_nano
FROM seqtrace_spans FINAL

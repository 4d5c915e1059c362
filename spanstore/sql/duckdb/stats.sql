SELECT
    count(*) AS spans,
    count(DISTINCT trace_id) AS traces,
    min(start_unix_nano) AS first_unix_nano,
    max(start_unix_nano + duration_ns) AS last_unix_nano
FROM spans

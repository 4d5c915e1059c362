-- The exporter does not de-duplicate: a span re-sent by a retrying collector is stored
-- twice, so spans are counted as distinct (TraceId, SpanId).
SELECT
    toInt64(uniqExact(TraceId, SpanId)) AS spans,
    toInt64(uniqExact(TraceId)) AS traces,
    minOrNull(toUnixTimestamp64Nano(Timestamp)) AS first_unix_nano,
    maxOrNull(toUnixTimestamp64Nano(Timestamp) + toInt64(Duration)) AS last_unix_nano
FROM @table

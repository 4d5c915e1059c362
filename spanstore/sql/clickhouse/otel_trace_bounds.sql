-- The exporter's lookup table (TraceId -> first/last span time, filled by its
-- materialized view): narrows a trace-id lookup to those times. Second precision.
SELECT
    toInt64(uniqExact(TraceId)) AS found,
    toInt64(toUnixTimestamp(min(Start))) AS first_second,
    toInt64(toUnixTimestamp(max(End))) AS last_second
FROM @lookup
WHERE TraceId IN $trace_ids

-- Entity keys, most likely first (as spanstore/sql/entity_keys.sql): a business
-- identifier's values recur across traces and services, an infrastructure id's mostly do
-- not. Spans are counted as distinct (trace_id, span_id), so rows not yet merged away by
-- ReplacingMergeTree do not count twice.
WITH per_value AS (
    SELECT
        key,
        value,
        uniqExact(trace_id, span_id) AS spans,
        uniqExact(trace_id) AS traces,
        uniqExact(service_name) AS services
    FROM seqtrace_entities
    GROUP BY key, value
),
per_key AS (
    SELECT key, uniqExact(trace_id) AS traces, uniqExact(service_name) AS services
    FROM seqtrace_entities
    GROUP BY key
)
SELECT
    p.key AS key,
    toInt64(count()) AS `values`,
    toInt64(sum(p.spans)) AS spans,
    toInt64(any(k.traces)) AS traces,
    toInt64(any(k.services)) AS services,
    toInt64(countIf(p.traces > 1 OR p.services > 1)) AS recurring_values
FROM per_value AS p
INNER JOIN per_key AS k ON k.key = p.key
GROUP BY p.key
ORDER BY recurring_values DESC, traces DESC, key
LIMIT $limit

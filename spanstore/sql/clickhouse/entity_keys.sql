-- Entity keys, most likely first (as spanstore/sql/entity_keys.sql): a business
-- identifier's values recur across traces and services, an infrastructure id's mostly do
-- not. FINAL: a raced duplicate row must not count twice. The table is sorted by
-- (key, value, ...), so the per-value aggregation streams in order; "more than one
-- trace or service" is min != max, which needs no hash set per value.
WITH per_value AS (
    SELECT
        key,
        value,
        count() AS spans,
        min(trace_id) != max(trace_id) OR min(service_name) != max(service_name) AS recurring
    FROM seqtrace_entities FINAL
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
    toInt64(countIf(p.recurring)) AS recurring_values
FROM per_value AS p
INNER JOIN per_key AS k ON k.key = p.key
GROUP BY p.key
ORDER BY recurring_values DESC, traces DESC, key
LIMIT $limit
SETTINGS optimize_aggregation_in_order = 1

-- Entity keys, most likely first: a business identifier's values recur across traces and
-- services (an order is created, paid, shipped), an infrastructure id's mostly do not.
WITH per_value AS (
    SELECT
        key,
        value,
        count(*) AS spans,
        count(DISTINCT trace_id) AS traces,
        count(DISTINCT service_name) AS services
    FROM span_entities
    GROUP BY key, value
)
SELECT
    p.key,
    count(*) AS values,
    sum(p.spans)::BIGINT AS spans,
    (SELECT count(DISTINCT e.trace_id) FROM span_entities AS e WHERE e.key = p.key) AS traces,
    (SELECT count(DISTINCT e.service_name) FROM span_entities AS e WHERE e.key = p.key)
        AS services,
    count(*) FILTER (WHERE p.traces > 1 OR p.services > 1) AS recurring_values
FROM per_value AS p
GROUP BY p.key
ORDER BY recurring_values DESC, traces DESC, p.key
LIMIT $limit

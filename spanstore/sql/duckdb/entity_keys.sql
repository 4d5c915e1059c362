-- Entity keys, most widespread first. Distinct counts are HyperLogLog estimates (within a
-- few percent): exact ones scan and hash every entity row, too slow on a large store.
SELECT
    key,
    approx_count_distinct(value) AS values,
    count(*) AS spans,
    approx_count_distinct(trace_id) AS traces,
    count(DISTINCT service_name) AS services
FROM span_entities
GROUP BY key
ORDER BY traces DESC, key
LIMIT $limit

-- Entity keys, most widespread first. Distinct counts are HyperLogLog estimates (within a
-- few percent): exact ones scan and hash millions of rows (6 s at 10M spans, >1 s target).
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

SELECT
    key,
    count(DISTINCT value) AS values,
    count(*) AS spans,
    count(DISTINCT trace_id) AS traces,
    count(DISTINCT service_name) AS services
FROM span_entities
GROUP BY key
ORDER BY traces DESC, key
LIMIT $limit

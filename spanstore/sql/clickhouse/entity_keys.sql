-- Entity keys, most widespread first (as spanstore/sql/entity_keys.sql). The distinct
-- counts of values and traces are estimates, like DuckDB's HyperLogLog ones: uniq() is
-- exact up to 65,536 distinct values and samples adaptively beyond (about 1 % error).
-- Span counts are exact (FINAL: a raced duplicate row does not count twice).
SELECT
    key,
    toInt64(uniq(value)) AS `values`,
    toInt64(count()) AS spans,
    toInt64(uniq(trace_id)) AS traces,
    toInt64(uniqExact(service_name)) AS services
FROM seqtrace_entities FINAL
GROUP BY key
ORDER BY traces DESC, key
LIMIT $limit

-- Every distinct resource, for the query language's resource attribute tests
-- (spanstore.query; evaluated on the decoded attributes).
SELECT resource_id, any(raw) AS raw FROM seqtrace_resources GROUP BY resource_id

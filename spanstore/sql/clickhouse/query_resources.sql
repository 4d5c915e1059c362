-- Every distinct resource (few: one per process), for the query language's resource
-- attribute tests, which are evaluated on the decoded attributes (spanstore.query).
SELECT resource_id, any(raw) AS raw FROM seqtrace_resources GROUP BY resource_id

-- The resources and scopes that spans refer to, in one round trip.
SELECT 'resource' AS what, resource_id AS id, raw, schema_url, '' AS name, '' AS version
FROM seqtrace_resources
WHERE resource_id IN $resource_ids
LIMIT 1 BY resource_id
UNION ALL
SELECT 'scope' AS what, scope_id AS id, raw, schema_url, name, version
FROM seqtrace_scopes
WHERE scope_id IN $scope_ids
LIMIT 1 BY scope_id

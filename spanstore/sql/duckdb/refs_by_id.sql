-- The resources and scopes that spans refer to, in one statement.
SELECT 'resource' AS what, resource_id AS id, raw, schema_url, '' AS name, '' AS version
FROM resources
WHERE resource_id IN (SELECT unnest($resource_ids::UBIGINT[]))
UNION ALL
SELECT 'scope' AS what, scope_id AS id, raw, schema_url, name, version
FROM scopes
WHERE scope_id IN (SELECT unnest($scope_ids::UBIGINT[]))

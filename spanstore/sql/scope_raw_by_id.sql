SELECT scope_id, raw, schema_url FROM scopes WHERE scope_id IN (SELECT unnest($ids::UBIGINT[]))

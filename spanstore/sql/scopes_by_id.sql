SELECT scope_id, name, version FROM scopes WHERE scope_id IN (SELECT unnest($ids::UBIGINT[]))

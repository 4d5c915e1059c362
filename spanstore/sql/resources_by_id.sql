SELECT resource_id, raw, schema_url FROM resources WHERE resource_id IN (SELECT unnest($ids::UBIGINT[]))

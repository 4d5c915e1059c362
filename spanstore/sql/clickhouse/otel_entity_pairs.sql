-- A row's entity attributes as (key, value) pairs, span attributes then resource ones,
-- keys among $keys and values not empty (otel_entity_keys.sql, otel_trace_entities.sql:
-- ARRAY JOIN @otel_entity_pairs AS kv).
arrayConcat(
    arrayFilter(x -> has($keys, x.1) AND x.2 != '',
                arrayZip(mapKeys(SpanAttributes), mapValues(SpanAttributes))),
    arrayFilter(x -> has($keys, x.1) AND x.2 != '',
                arrayZip(mapKeys(ResourceAttributes), mapValues(ResourceAttributes)))
)

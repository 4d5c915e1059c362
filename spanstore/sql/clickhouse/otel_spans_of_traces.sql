-- Every span of these traces, one row per (TraceId, SpanId), by start time.
SELECT
    lower(TraceId) AS trace_id,
    lower(SpanId) AS span_id,
    lower(ParentSpanId) AS parent_span_id,
    TraceState AS trace_state,
    toString(SpanName) AS name,
    toString(SpanKind) AS kind,
    toString(ServiceName) AS service_name,
    toUnixTimestamp64Nano(Timestamp) AS start_unix_nano,
    toInt64(Duration) AS duration_ns,
    toString(StatusCode) AS status_code,
    StatusMessage AS status_message,
    @scope_name AS scope_name,
    @scope_version AS scope_version,
    CAST(ResourceAttributes, 'Map(String, String)') AS resource_attributes,
    CAST(SpanAttributes, 'Map(String, String)') AS attributes,
    arrayMap(t -> toUnixTimestamp64Nano(t), `Events.Timestamp`) AS event_times,
    CAST(`Events.Name`, 'Array(String)') AS event_names,
    CAST(`Events.Attributes`, 'Array(Map(String, String))') AS event_attributes,
    arrayMap(x -> lower(x), `Links.TraceId`) AS link_trace_ids,
    arrayMap(x -> lower(x), `Links.SpanId`) AS link_span_ids,
    `Links.TraceState` AS link_trace_states,
    CAST(`Links.Attributes`, 'Array(Map(String, String))') AS link_attributes
FROM @table
WHERE TraceId IN $trace_ids
  AND Timestamp >= fromUnixTimestamp64Nano(toInt64($lo))
  AND Timestamp < fromUnixTimestamp64Nano(toInt64($hi))
ORDER BY start_unix_nano, span_id
LIMIT 1 BY TraceId, SpanId

-- The OpenTelemetry exporter's otel_logs records of these traces (hex TraceId), in time
-- order within $lo/$hi. Columns, not protobuf: body and attribute values as the exporter
-- wrote them (text). @event_name is EventName, or '' for an exporter without it.
SELECT
    if(TraceId = '', NULL, lower(TraceId)) AS trace_id,
    if(SpanId = '', NULL, lower(SpanId)) AS span_id,
    toUnixTimestamp64Nano(Timestamp) AS time_unix_nano,
    toUnixTimestamp64Nano(Timestamp) AS observed_unix_nano,
    toInt32(SeverityNumber) AS severity_number,
    toString(SeverityText) AS severity_text,
    toString(ServiceName) AS service_name,
    toUInt32(TraceFlags) AS flags,
    toString(@event_name) AS event_name,
    Body AS body,
    CAST(LogAttributes, 'Map(String, String)') AS attributes,
    CAST(ResourceAttributes, 'Map(String, String)') AS resource_attributes,
    toString(ScopeName) AS scope_name,
    toString(ScopeVersion) AS scope_version
FROM @logs_table
WHERE TraceId IN $trace_ids
  AND Timestamp BETWEEN fromUnixTimestamp64Nano(toInt64($lo))
                    AND fromUnixTimestamp64Nano(toInt64($hi))
ORDER BY time_unix_nano

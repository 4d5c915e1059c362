-- An otel_logs row as the log reads return it (otel_logs_of_traces.sql and
-- otel_logs_in_range.sql: SELECT @otel_log_columns). Columns, not protobuf: body and
-- attribute values as the exporter wrote them (text); no observed time (the record's time
-- stands for it). @event_name is EventName, or '' for an exporter without it.
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

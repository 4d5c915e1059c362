-- The span frame's columns (spanstore/frame.py) from an otel_traces row: semantic-convention
-- columns from SpanAttributes in the conventions' order of preference (@semantic, from
-- spanstore/semconv.py), the exception from the first `exception` event of error spans.
lower(TraceId) AS trace_id,
lower(SpanId) AS span_id,
if(ParentSpanId = '', NULL, lower(ParentSpanId)) AS parent_span_id,
if(ServiceName = '', 'unknown_service', toString(ServiceName)) AS service_name,
toString(SpanName) AS name,
@kind AS kind,
toUnixTimestamp64Nano(Timestamp) AS start_unix_nano,
toUnixTimestamp64Nano(Timestamp) + toInt64(Duration) AS end_unix_nano,
toInt64(Duration) AS duration_ns,
@status AS status_code,
StatusMessage AS status_message,
indexOf(`Events.Name`, 'exception') AS exception_at,
if(status_code = 'ERROR' AND exception_at > 0
       AND mapContains(`Events.Attributes`[exception_at], 'exception.type'),
   `Events.Attributes`[exception_at]['exception.type'], NULL) AS exception_type,
if(status_code = 'ERROR' AND exception_at > 0
       AND mapContains(`Events.Attributes`[exception_at], 'exception.message'),
   `Events.Attributes`[exception_at]['exception.message'], NULL) AS exception_message,
@semantic

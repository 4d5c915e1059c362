-- (hour, trace_id) for every hour that holds a span of these traces, from the trace index,
-- within the caller's bounds $lo/$hi.
SELECT
    arrayJoin(range(intDiv(greatest(min(first_start), toInt64($lo)), 3600000000000),
                    intDiv(least(max(last_start), toInt64($hi)), 3600000000000) + 1)) AS hour,
    trace_id
FROM seqtrace_trace_index
WHERE trace_id IN $trace_ids
GROUP BY trace_id

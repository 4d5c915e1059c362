SELECT
    arrayJoin(range(intDiv(min(first_start), 3600000000000),
                    intDiv(max(last_start), 3600000000000) + 1)) AS hour,
    trace_id
FROM seqtrace_trace_index
WHERE trace_id IN $trace_ids
GROUP BY trace_id

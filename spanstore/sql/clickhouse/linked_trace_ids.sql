-- Traces joined to the given ones by a span link, from either end of the link.
SELECT DISTINCT linked_trace_id AS other FROM seqtrace_links
WHERE trace_id IN $trace_ids
UNION DISTINCT
SELECT DISTINCT trace_id AS other FROM seqtrace_links
WHERE linked_trace_id IN $trace_ids

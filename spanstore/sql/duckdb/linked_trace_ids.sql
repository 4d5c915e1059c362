-- Traces joined to the given ones by a span link, from either end of the link.
SELECT DISTINCT linked_trace_id AS trace_id FROM span_links
WHERE trace_id IN (SELECT unnest($trace_ids::BLOB[]))
UNION
SELECT DISTINCT trace_id FROM span_links
WHERE linked_trace_id IN (SELECT unnest($trace_ids::BLOB[]))

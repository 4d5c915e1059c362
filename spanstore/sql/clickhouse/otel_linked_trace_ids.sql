-- Traces joined to the given ones by a span link, from either end of the link.
SELECT DISTINCT lower(arrayJoin(`Links.TraceId`)) AS other
FROM @table
WHERE TraceId IN $trace_ids
UNION DISTINCT
SELECT DISTINCT lower(TraceId) AS other
FROM @table
ARRAY JOIN `Links.TraceId` AS linked
WHERE lower(linked) IN $trace_ids

-- Every attribute key in use (span and resource); reads only the maps' key subcolumns.
SELECT DISTINCT toString(arrayJoin(arrayConcat(mapKeys(SpanAttributes),
                                               mapKeys(ResourceAttributes)))) AS key
FROM @table

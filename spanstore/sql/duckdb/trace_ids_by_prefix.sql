-- Trace ids in [lo, hi] (a pasted prefix padded with 00.. and ff..), for ids pasted short.
SELECT DISTINCT trace_id
FROM spans
WHERE trace_id >= $lo AND trace_id <= $hi
ORDER BY trace_id
LIMIT $limit

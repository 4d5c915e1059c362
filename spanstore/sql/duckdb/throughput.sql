SELECT
    $start + (start_unix_nano - $start) // $bucket * $bucket AS bucket_unix_nano,
    count(*) AS spans,
    count(*) FILTER (WHERE status_code = 2) AS errors
FROM spans
WHERE start_unix_nano >= $start AND start_unix_nano < $end
GROUP BY ALL
ORDER BY bucket_unix_nano

SELECT
    $start + intDiv(start_unix_nano - $start, $bucket) * $bucket AS bucket_unix_nano,
    toInt64(count()) AS spans,
    toInt64(countIf(status_code = 2)) AS errors
FROM seqtrace_spans FINAL
WHERE start_unix_nano >= $start AND start_unix_nano < $end
GROUP BY bucket_unix_nano
ORDER BY bucket_unix_nano

SELECT
    $start + intDiv(toUnixTimestamp64Nano(Timestamp) - $start, $bucket) * $bucket
        AS bucket_unix_nano,
    toInt64(count()) AS spans,
    toInt64(countIf(@status = 'ERROR')) AS errors
FROM @table
WHERE Timestamp >= fromUnixTimestamp64Nano(toInt64($start))
  AND Timestamp < fromUnixTimestamp64Nano(toInt64($end))
GROUP BY bucket_unix_nano
ORDER BY bucket_unix_nano

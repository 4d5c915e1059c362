SELECT maxOrNull(toUnixTimestamp64Nano(Timestamp) + toInt64(Duration)) AS last FROM @table

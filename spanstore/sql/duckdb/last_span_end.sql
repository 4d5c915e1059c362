SELECT max(start_unix_nano + duration_ns) AS last FROM spans

SELECT max(start_unix_nano + duration_ns) FROM spans

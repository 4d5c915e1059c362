SELECT maxOrNull(start_unix_nano + duration_ns) AS last FROM seqtrace_spans

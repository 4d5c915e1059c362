SELECT value FROM seqtrace_meta FINAL WHERE key = 'schema_version'

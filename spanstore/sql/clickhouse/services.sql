SELECT DISTINCT service_name FROM seqtrace_spans ORDER BY service_name

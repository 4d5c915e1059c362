-- Every stored span's key (trace_id || span_id, 24 bytes) to rebuild the seen-filter.
SELECT trace_id || span_id AS span_key FROM spans

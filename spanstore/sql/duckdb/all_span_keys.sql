-- The key (trace_id || span_id, 24 bytes) of every stored span that started in the dedup
-- window, to build the seen-filter when the store opens (older spans are checked
-- exactly). The store is in time order, so zone maps skip the older row groups.
SELECT trace_id || span_id AS span_key FROM spans WHERE start_unix_nano >= $since

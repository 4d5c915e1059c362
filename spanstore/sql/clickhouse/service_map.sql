-- The service map's figures for the spans starting in [start, end), aggregated in the store
-- (duckdb/service_map.sql states the rows; the rules are in service_map_figures.sql) over
-- the span frame's columns (span_frame_select.sql; FINAL keeps a raced duplicate out).
WITH s AS (
@span_frame_select
    WHERE start_unix_nano >= $start AND start_unix_nano < $end
)
)
@service_map_figures

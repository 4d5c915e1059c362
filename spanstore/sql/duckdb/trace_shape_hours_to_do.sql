-- The hours of span start time (their start, newest first) that have spans but whose traces
-- the writer has not given trace_shapes rows yet (trace_shapes_of_hour.sql). Read once
-- when the writer first idles; after that the hours come from its own commits.
SELECT DISTINCT start_unix_nano - start_unix_nano % 3600000000000 AS hour_unix_nano
FROM spans
EXCEPT
SELECT hour_unix_nano FROM trace_shape_hours
ORDER BY hour_unix_nano DESC

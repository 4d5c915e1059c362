-- Schema version 3 -> 4: the `trace_shapes` table (trace_shapes_table.sql, which
-- schema.sql includes for new files too), filled by the writer thread once the file is
-- open for writing. Runs in the opening writer's transaction, so a crash leaves the file
-- at version 3, whole.
@trace_shapes_table
UPDATE seqtrace_meta SET value = '4' WHERE key = 'schema_version';

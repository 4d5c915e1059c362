-- Schema version 2 -> 3: the `logs` table (logs_table.sql, which schema.sql includes for
-- new files too; a later version that changes the table gives this migration its own
-- copy of the version-3 statement). Runs in the opening writer's transaction, so a crash
-- leaves the file at version 2, whole.
@logs_table
UPDATE seqtrace_meta SET value = '3' WHERE key = 'schema_version';

-- Schema version 1 -> 2: span_entities loses its span id (no query reads it; ~3 bytes
-- per span on disk). DuckDB refuses to alter a table that an index depends on, so the
-- entity value index is dropped and built again. Runs in the opening writer's
-- transaction, so a crash leaves the file at version 1, whole.
DROP INDEX IF EXISTS span_entities_value;
ALTER TABLE span_entities DROP COLUMN span_id;
CREATE INDEX span_entities_value ON span_entities (value);
UPDATE seqtrace_meta SET value = '2' WHERE key = 'schema_version';

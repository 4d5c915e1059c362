-- Indexes that files written by earlier builds of this schema version may lack.
CREATE INDEX IF NOT EXISTS span_entities_value ON span_entities (value);

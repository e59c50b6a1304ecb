-- How far back what is stored reaches, once retention has removed something: readings (and
-- their classifications) from `readings_from`; SQLite keeps no rollups, so `rollups_from`
-- stays NULL. One row, as on PostgreSQL.
CREATE TABLE retention_watermark (
    only_row      BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    readings_from TIMESTAMPTZ,
    rollups_from  TIMESTAMPTZ
);
INSERT INTO retention_watermark DEFAULT VALUES;

-- Design: the event row is never rewritten on the happy path. The queue is a small table of its
-- own (leased to the receiving process at insert); results go to an append-only table with the
-- label index the listing needs.
DROP INDEX events_due_idx, events_label_idx;
\ir queue_table.sql
CREATE TABLE classifications (
    event_id            BIGINT PRIMARY KEY,
    observed_at         TIMESTAMPTZ NOT NULL,
    label               TEXT NOT NULL,
    level_of_service    TEXT,
    flow_veh_h_lane     DOUBLE PRECISION NOT NULL,
    density_veh_km_lane DOUBLE PRECISION,
    confidence          DOUBLE PRECISION NOT NULL,
    flags               JSONB NOT NULL,
    reasons             JSONB NOT NULL,
    classifier_version  TEXT NOT NULL,
    classified_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX classifications_label_idx ON classifications (label, observed_at DESC);

DROP FUNCTION drop_event_partitions(TIMESTAMPTZ, INTERVAL);
DROP TABLE retention_watermark;
DROP VIEW event_states;

ALTER TABLE events RENAME TO events_partitioned;
ALTER TABLE events_partitioned RENAME CONSTRAINT events_reading_key TO events_partitioned_reading_key;
ALTER TABLE events_partitioned RENAME CONSTRAINT events_pkey TO events_partitioned_pkey;
ALTER INDEX events_newest_idx RENAME TO events_partitioned_newest_idx;
ALTER SEQUENCE events_id_seq RENAME TO events_partitioned_id_seq;
ALTER TABLE classifications RENAME TO classifications_partitioned;
ALTER TABLE classifications_partitioned RENAME CONSTRAINT classifications_pkey TO classifications_partitioned_pkey;
ALTER INDEX classifications_label_idx RENAME TO classifications_partitioned_label_idx;

CREATE TABLE events (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sensor_id           TEXT NOT NULL CONSTRAINT events_sensor_id_check
        CHECK (octet_length(sensor_id) BETWEEN 1 AND 128 AND sensor_id ~ '^[A-Za-z0-9._:/-]+$'),
    observed_at         TIMESTAMPTZ NOT NULL,
    interval_s          INTEGER NOT NULL CHECK (interval_s BETWEEN 1 AND 3600),
    lane                SMALLINT CHECK (lane BETWEEN 0 AND 32),
    vehicle_count       INTEGER NOT NULL CHECK (vehicle_count BETWEEN 0 AND 100000),
    avg_speed_kmh       DOUBLE PRECISION CHECK (avg_speed_kmh BETWEEN 0 AND 400),
    occupancy_pct       DOUBLE PRECISION CHECK (occupancy_pct BETWEEN 0 AND 100),
    speed_limit_kmh     SMALLINT CHECK (speed_limit_kmh BETWEEN 5 AND 200),
    lanes               SMALLINT CHECK (lanes BETWEEN 1 AND 32),
    received_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT events_reading_key UNIQUE NULLS NOT DISTINCT (sensor_id, lane, observed_at)
);
CREATE INDEX events_newest_idx ON events (observed_at DESC, id DESC);
CREATE TABLE classifications (
    LIKE classifications_partitioned INCLUDING ALL EXCLUDING INDEXES,
    PRIMARY KEY (event_id));
CREATE INDEX classifications_label_idx
    ON classifications (label, observed_at DESC, event_id DESC);

INSERT INTO events OVERRIDING SYSTEM VALUE SELECT * FROM events_partitioned;
INSERT INTO classifications SELECT * FROM classifications_partitioned;
SELECT setval(pg_get_serial_sequence('events', 'id'), last_value, is_called)
  FROM events_partitioned_id_seq;
DROP TABLE events_partitioned;
DROP TABLE classifications_partitioned;
DROP FUNCTION create_event_partitions(TIMESTAMPTZ[]);

CREATE OR REPLACE FUNCTION enqueue_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO queue (event_id, next_attempt_at) SELECT id, received_at FROM inserted;
    RETURN NULL;
END $$;
CREATE TRIGGER events_enqueue AFTER INSERT ON events
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION enqueue_events();
ALTER TABLE queue DROP COLUMN observed_at;

CREATE VIEW event_states AS
SELECT e.id, e.sensor_id, e.observed_at, e.interval_s, e.lane, e.vehicle_count,
       e.avg_speed_kmh, e.occupancy_pct, e.speed_limit_kmh, e.lanes, e.received_at,
       CASE
           WHEN q.failed THEN 'failed'
           WHEN q.lease_owner IS NOT NULL THEN 'processing'
           WHEN q.event_id IS NOT NULL THEN 'pending'
           ELSE 'classified'
       END AS status,
       c.label, c.level_of_service, c.flow_veh_h_lane, c.density_veh_km_lane, c.confidence,
       c.flags, c.reasons, c.classifier_version, c.classified_at,
       coalesce(q.attempts, c.attempts, 0) AS attempts,
       q.next_attempt_at, q.lease_owner, q.lease_until, q.last_error,
       coalesce(q.requeued, FALSE) AS requeued,
       c.observed_at AS classification_observed_at, c.event_id AS classification_event_id
  FROM events e
  LEFT JOIN classifications c ON c.event_id = e.id
  LEFT JOIN queue q ON q.event_id = e.id;

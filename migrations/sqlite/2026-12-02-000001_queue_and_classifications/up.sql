-- The queue and the classifications leave the event row, as on PostgreSQL (same tables, same
-- view; see migrations/postgres). SQLite cannot drop columns that constraints and indexes
-- name, so `events` is rebuilt with the reading's columns only.

CREATE TABLE classifications (
    event_id            INTEGER PRIMARY KEY,
    observed_at         TIMESTAMPTZ NOT NULL,
    label               TEXT NOT NULL
                        CHECK (label IN ('free_flow', 'moderate', 'heavy', 'congested', 'unknown')),
    level_of_service    TEXT CHECK (level_of_service IN ('A', 'B', 'C', 'D', 'E', 'F')),
    flow_veh_h_lane     DOUBLE NOT NULL CHECK (flow_veh_h_lane >= 0),
    density_veh_km_lane DOUBLE CHECK (density_veh_km_lane >= 0),
    confidence          DOUBLE NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    flags               JSON NOT NULL CHECK (json_type(flags) = 'array'),
    reasons             JSON NOT NULL CHECK (json_type(reasons) = 'array'),
    classifier_version  TEXT NOT NULL,
    classified_at       TIMESTAMPTZ NOT NULL,
    attempts            INTEGER NOT NULL CHECK (attempts >= 0)
);
CREATE INDEX classifications_label_idx
    ON classifications (label, observed_at DESC, event_id DESC);

CREATE TABLE queue (
    event_id        INTEGER PRIMARY KEY,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    lease_owner     TEXT,
    lease_until     TIMESTAMPTZ,
    last_error      TEXT,
    failed          BOOLEAN NOT NULL DEFAULT FALSE,
    requeued        BOOLEAN NOT NULL DEFAULT FALSE,
    CHECK ((lease_owner IS NULL) = (lease_until IS NULL)),
    CHECK (NOT failed OR lease_owner IS NULL)
);
CREATE INDEX queue_due_idx ON queue (next_attempt_at, event_id) WHERE NOT failed;

INSERT INTO classifications
SELECT id, observed_at, label, level_of_service, coalesce(flow_veh_h_lane, 0),
       density_veh_km_lane, coalesce(confidence, 0), coalesce(flags, '[]'),
       coalesce(reasons, '[]'), coalesce(classifier_version, ''),
       coalesce(classified_at, received_at), attempts
  FROM events
 WHERE label IS NOT NULL;
INSERT INTO queue
SELECT id, next_attempt_at, attempts,
       CASE WHEN status = 'processing' THEN lease_owner END,
       CASE WHEN status = 'processing' THEN lease_until END,
       last_error, status = 'failed', requeued
  FROM events
 WHERE status <> 'classified';

CREATE TABLE events_readings (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    sensor_id           TEXT NOT NULL CHECK (
                            length(sensor_id) BETWEEN 1 AND 128
                            AND sensor_id NOT GLOB '*[^A-Za-z0-9._:/-]*'),
    observed_at         TIMESTAMPTZ NOT NULL,
    interval_s          INTEGER NOT NULL CHECK (interval_s BETWEEN 1 AND 3600),
    lane                SMALLINT CHECK (lane BETWEEN 0 AND 32),
    vehicle_count       INTEGER NOT NULL CHECK (vehicle_count BETWEEN 0 AND 100000),
    avg_speed_kmh       DOUBLE CHECK (avg_speed_kmh BETWEEN 0 AND 400),
    occupancy_pct       DOUBLE CHECK (occupancy_pct BETWEEN 0 AND 100),
    speed_limit_kmh     SMALLINT CHECK (speed_limit_kmh BETWEEN 5 AND 200),
    lanes               SMALLINT CHECK (lanes BETWEEN 1 AND 32),
    received_at         TIMESTAMPTZ NOT NULL
);
INSERT INTO events_readings
SELECT id, sensor_id, observed_at, interval_s, lane, vehicle_count, avg_speed_kmh,
       occupancy_pct, speed_limit_kmh, lanes, received_at
  FROM events;
-- Ids are never reused: the old table's high-water mark carries over.
UPDATE sqlite_sequence
   SET seq = max(seq, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0))
 WHERE name = 'events_readings';
DROP TABLE events;
ALTER TABLE events_readings RENAME TO events;
CREATE UNIQUE INDEX events_reading_key ON events (sensor_id, ifnull(lane, -1), observed_at);
CREATE INDEX events_sensor_lane_idx ON events (sensor_id, lane, observed_at);
CREATE INDEX events_newest_idx ON events (observed_at DESC, id DESC);

CREATE TRIGGER events_enqueue AFTER INSERT ON events BEGIN
    INSERT INTO queue (event_id, next_attempt_at) VALUES (NEW.id, NEW.received_at);
END;

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
       -- The same as observed_at and id where there is a classification: a listing by label
       -- orders by these, so that it walks classifications_label_idx.
       c.observed_at AS classification_observed_at, c.event_id AS classification_event_id
  FROM events e
  LEFT JOIN classifications c ON c.event_id = e.id
  LEFT JOIN queue q ON q.event_id = e.id;

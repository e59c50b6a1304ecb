DROP VIEW event_states;
DROP TRIGGER events_enqueue;
CREATE TABLE events_full (
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
    received_at         TIMESTAMPTZ NOT NULL,
    status              TEXT NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'processing', 'classified', 'failed')),
    label               TEXT CHECK (label IN ('free_flow', 'moderate', 'heavy', 'congested', 'unknown')),
    level_of_service    TEXT CHECK (level_of_service IN ('A', 'B', 'C', 'D', 'E', 'F')),
    flow_veh_h_lane     DOUBLE CHECK (flow_veh_h_lane >= 0),
    density_veh_km_lane DOUBLE CHECK (density_veh_km_lane >= 0),
    confidence          DOUBLE CHECK (confidence BETWEEN 0 AND 1),
    flags               JSON CHECK (json_type(flags) = 'array'),
    reasons             JSON CHECK (json_type(reasons) = 'array'),
    classifier_version  TEXT,
    classified_at       TIMESTAMPTZ,
    attempts            INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at     TIMESTAMPTZ NOT NULL,
    lease_owner         TEXT,
    lease_until         TIMESTAMPTZ,
    last_error          TEXT,
    requeued            BOOLEAN NOT NULL DEFAULT FALSE,
    CHECK (status <> 'classified' OR (label IS NOT NULL AND classified_at IS NOT NULL)),
    CHECK (status <> 'processing' OR (lease_owner IS NOT NULL AND lease_until IS NOT NULL))
);
INSERT INTO events_full
SELECT e.id, e.sensor_id, e.observed_at, e.interval_s, e.lane, e.vehicle_count,
       e.avg_speed_kmh, e.occupancy_pct, e.speed_limit_kmh, e.lanes, e.received_at,
       CASE WHEN q.failed THEN 'failed'
            WHEN q.lease_owner IS NOT NULL THEN 'processing'
            WHEN q.event_id IS NOT NULL THEN 'pending'
            ELSE 'classified' END,
       c.label, c.level_of_service, c.flow_veh_h_lane, c.density_veh_km_lane, c.confidence,
       c.flags, c.reasons, c.classifier_version, c.classified_at,
       coalesce(q.attempts, c.attempts, 0), coalesce(q.next_attempt_at, e.received_at),
       q.lease_owner, q.lease_until, q.last_error, coalesce(q.requeued, FALSE)
  FROM events e
  LEFT JOIN classifications c ON c.event_id = e.id
  LEFT JOIN queue q ON q.event_id = e.id;
UPDATE sqlite_sequence
   SET seq = max(seq, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0))
 WHERE name = 'events_full';
DROP TABLE events;
ALTER TABLE events_full RENAME TO events;
CREATE UNIQUE INDEX events_reading_key ON events (sensor_id, ifnull(lane, -1), observed_at);
CREATE INDEX events_sensor_lane_idx ON events (sensor_id, lane, observed_at);
CREATE INDEX events_newest_idx ON events (observed_at DESC, id DESC);
CREATE INDEX events_due_idx ON events (next_attempt_at, id) WHERE status IN ('pending', 'processing');
CREATE INDEX events_label_idx ON events (label, observed_at DESC) WHERE label IS NOT NULL;
DROP TABLE queue;
DROP TABLE classifications;

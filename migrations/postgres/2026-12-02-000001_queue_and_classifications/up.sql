-- The queue and the classifications leave the event row, so that classifying a reading never
-- rewrites it: `events` holds what the sensor sent and is written once; `queue` is a small,
-- short-lived row per reading not yet classified (or failed, or queued again by hand); and
-- `classifications` is appended to once per reading. docs/architecture.md says why.

CREATE TABLE classifications (
    -- No foreign key: checking one locks the event row (FOR KEY SHARE), a write to the events
    -- table on every classification. Rows are only ever added for stored events.
    event_id            BIGINT PRIMARY KEY,
    -- The event's, copied so that a listing by label walks this table's index in time order.
    observed_at         TIMESTAMPTZ NOT NULL,
    label               TEXT NOT NULL
                        CHECK (label IN ('free_flow', 'moderate', 'heavy', 'congested', 'unknown')),
    level_of_service    TEXT CHECK (level_of_service IN ('A', 'B', 'C', 'D', 'E', 'F')),
    flow_veh_h_lane     DOUBLE PRECISION NOT NULL CHECK (flow_veh_h_lane >= 0),
    density_veh_km_lane DOUBLE PRECISION CHECK (density_veh_km_lane >= 0),
    confidence          DOUBLE PRECISION NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    flags               JSONB NOT NULL CHECK (jsonb_typeof(flags) = 'array'),
    reasons             JSONB NOT NULL CHECK (jsonb_typeof(reasons) = 'array'),
    classifier_version  TEXT NOT NULL,
    classified_at       TIMESTAMPTZ NOT NULL,
    -- Attempts it took, kept once the queue row is gone.
    attempts            INTEGER NOT NULL CHECK (attempts >= 0)
);
CREATE INDEX classifications_label_idx
    ON classifications (label, observed_at DESC, event_id DESC);

CREATE TABLE queue (
    event_id        BIGINT PRIMARY KEY,
    -- When the reading is due: now, after a backoff, or when its lease runs out.
    next_attempt_at TIMESTAMPTZ NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    lease_owner     TEXT,
    lease_until     TIMESTAMPTZ,
    last_error      TEXT,
    -- Given up on after repeated permanent failures; stays until queued again by hand.
    failed          BOOLEAN NOT NULL DEFAULT FALSE,
    -- Queued again by hand (POST /v1/events/{id}/classify): classified through classify_by_id.
    requeued        BOOLEAN NOT NULL DEFAULT FALSE,
    CONSTRAINT queue_lease_whole CHECK ((lease_owner IS NULL) = (lease_until IS NULL)),
    CONSTRAINT queue_failed_unleased CHECK (NOT failed OR lease_owner IS NULL)
);
CREATE INDEX queue_due_idx ON queue (next_attempt_at, event_id) WHERE NOT failed;
-- Every row is inserted, updated a few times and deleted within seconds: vacuum it by the
-- number of dead rows, not by a fraction of a table that is small one moment and large the next.
ALTER TABLE queue SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 5000,
    autovacuum_analyze_scale_factor = 0,
    autovacuum_analyze_threshold = 5000
);

-- The existing rows, in every status.
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

DROP INDEX events_due_idx, events_label_idx;
ALTER TABLE events
    DROP CONSTRAINT events_classified_has_result,
    DROP CONSTRAINT events_processing_has_lease,
    DROP COLUMN status, DROP COLUMN label, DROP COLUMN level_of_service,
    DROP COLUMN flow_veh_h_lane, DROP COLUMN density_veh_km_lane, DROP COLUMN confidence,
    DROP COLUMN flags, DROP COLUMN reasons, DROP COLUMN classifier_version,
    DROP COLUMN classified_at, DROP COLUMN attempts, DROP COLUMN next_attempt_at,
    DROP COLUMN lease_owner, DROP COLUMN lease_until, DROP COLUMN last_error,
    DROP COLUMN requeued;

-- Every stored reading is queued by the statement that stores it, whichever statement that
-- is: one trigger per statement, reading the rows it inserted as a set.
CREATE FUNCTION enqueue_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO queue (event_id, next_attempt_at) SELECT id, received_at FROM inserted;
    RETURN NULL;
END $$;
CREATE TRIGGER events_enqueue AFTER INSERT ON events
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION enqueue_events();

-- An event as the API shows it: the reading, its latest classification and its place in the
-- queue. A queue row wins over a classification (queued again: the old result stays visible).
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

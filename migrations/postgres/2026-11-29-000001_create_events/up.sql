-- Every reading a sensor sent, its classification and its place in the classification queue.
-- The CHECK constraints mirror the domain rules in mcp_classifier::reading so that nothing the
-- application would reject can be written behind its back.
CREATE TABLE events (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sensor_id           TEXT NOT NULL CHECK (sensor_id ~ '^[A-Za-z0-9._:/-]{1,128}$'),
    observed_at         TIMESTAMPTZ NOT NULL,
    interval_s          INTEGER NOT NULL CHECK (interval_s BETWEEN 1 AND 3600),
    lane                SMALLINT CHECK (lane BETWEEN 0 AND 32),
    vehicle_count       INTEGER NOT NULL CHECK (vehicle_count BETWEEN 0 AND 100000),
    avg_speed_kmh       DOUBLE PRECISION CHECK (avg_speed_kmh BETWEEN 0 AND 400),
    occupancy_pct       DOUBLE PRECISION CHECK (occupancy_pct BETWEEN 0 AND 100),
    speed_limit_kmh     SMALLINT CHECK (speed_limit_kmh BETWEEN 5 AND 200),
    lanes               SMALLINT CHECK (lanes BETWEEN 1 AND 32),
    received_at         TIMESTAMPTZ NOT NULL DEFAULT now(),

    status              TEXT NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'processing', 'classified', 'failed')),
    label               TEXT CHECK (label IN ('free_flow', 'moderate', 'heavy', 'congested', 'unknown')),
    level_of_service    TEXT CHECK (level_of_service IN ('A', 'B', 'C', 'D', 'E', 'F')),
    flow_veh_h_lane     DOUBLE PRECISION CHECK (flow_veh_h_lane >= 0),
    density_veh_km_lane DOUBLE PRECISION CHECK (density_veh_km_lane >= 0),
    confidence          DOUBLE PRECISION CHECK (confidence BETWEEN 0 AND 1),
    flags               JSONB CHECK (jsonb_typeof(flags) = 'array'),
    reasons             JSONB CHECK (jsonb_typeof(reasons) = 'array'),
    classifier_version  TEXT,
    classified_at       TIMESTAMPTZ,

    attempts            INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    lease_owner         TEXT,
    lease_until         TIMESTAMPTZ,
    last_error          TEXT,
    -- Queued again by hand (POST /v1/events/{id}/classify): classified through classify_by_id.
    requeued            BOOLEAN NOT NULL DEFAULT FALSE,

    -- One row per reading: a re-sent reading finds the first one, also when it has no lane.
    CONSTRAINT events_reading_key UNIQUE NULLS NOT DISTINCT (sensor_id, lane, observed_at),
    CONSTRAINT events_classified_has_result CHECK (
        status <> 'classified' OR (label IS NOT NULL AND classified_at IS NOT NULL)),
    CONSTRAINT events_processing_has_lease CHECK (
        status <> 'processing' OR (lease_owner IS NOT NULL AND lease_until IS NOT NULL))
);

-- Newest-first listing (GET /v1/events) with a keyset cursor on (observed_at, id).
CREATE INDEX events_newest_idx ON events (observed_at DESC, id DESC);
-- One sensor over a time range, and its recent history, are served by events_reading_key.
-- Due work: pending rows wait for next_attempt_at; processing rows carry their lease expiry there.
CREATE INDEX events_due_idx ON events (next_attempt_at, id) WHERE status IN ('pending', 'processing');
-- Listing by status scans the newest-first index (each extra index costs every insert and
-- every queue transition); labels, set once per classification, get a partial index.
CREATE INDEX events_label_idx ON events (label, observed_at DESC) WHERE label IS NOT NULL;

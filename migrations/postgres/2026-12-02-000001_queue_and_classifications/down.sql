DROP VIEW event_states;
DROP TRIGGER events_enqueue ON events;
DROP FUNCTION enqueue_events();
ALTER TABLE events
    ADD COLUMN status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'processing', 'classified', 'failed')),
    ADD COLUMN label TEXT
        CHECK (label IN ('free_flow', 'moderate', 'heavy', 'congested', 'unknown')),
    ADD COLUMN level_of_service TEXT CHECK (level_of_service IN ('A', 'B', 'C', 'D', 'E', 'F')),
    ADD COLUMN flow_veh_h_lane DOUBLE PRECISION CHECK (flow_veh_h_lane >= 0),
    ADD COLUMN density_veh_km_lane DOUBLE PRECISION CHECK (density_veh_km_lane >= 0),
    ADD COLUMN confidence DOUBLE PRECISION CHECK (confidence BETWEEN 0 AND 1),
    ADD COLUMN flags JSONB CHECK (jsonb_typeof(flags) = 'array'),
    ADD COLUMN reasons JSONB CHECK (jsonb_typeof(reasons) = 'array'),
    ADD COLUMN classifier_version TEXT,
    ADD COLUMN classified_at TIMESTAMPTZ,
    ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    ADD COLUMN next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    ADD COLUMN lease_owner TEXT,
    ADD COLUMN lease_until TIMESTAMPTZ,
    ADD COLUMN last_error TEXT,
    ADD COLUMN requeued BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE events e
   SET status = 'classified', label = c.label, level_of_service = c.level_of_service,
       flow_veh_h_lane = c.flow_veh_h_lane, density_veh_km_lane = c.density_veh_km_lane,
       confidence = c.confidence, flags = c.flags, reasons = c.reasons,
       classifier_version = c.classifier_version, classified_at = c.classified_at,
       attempts = c.attempts
  FROM classifications c
 WHERE c.event_id = e.id;
UPDATE events e
   SET status = CASE WHEN q.failed THEN 'failed'
                     WHEN q.lease_owner IS NOT NULL THEN 'processing'
                     ELSE 'pending' END,
       attempts = q.attempts, next_attempt_at = q.next_attempt_at,
       lease_owner = q.lease_owner, lease_until = q.lease_until,
       last_error = q.last_error, requeued = q.requeued
  FROM queue q
 WHERE q.event_id = e.id;
ALTER TABLE events
    ADD CONSTRAINT events_classified_has_result CHECK (
        status <> 'classified' OR (label IS NOT NULL AND classified_at IS NOT NULL)),
    ADD CONSTRAINT events_processing_has_lease CHECK (
        status <> 'processing' OR (lease_owner IS NOT NULL AND lease_until IS NOT NULL));
CREATE INDEX events_due_idx ON events (next_attempt_at, id) WHERE status IN ('pending', 'processing');
CREATE INDEX events_label_idx ON events (label, observed_at DESC) WHERE label IS NOT NULL;
DROP TABLE queue;
DROP TABLE classifications;

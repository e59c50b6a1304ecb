-- Design: the queue is a small table of its own (a row per unfinished reading, leased to the
-- receiving process at insert); `events` has no queue or label index and room on each page, so
-- recording the classification on the row is a HOT update (no index entry written).
DROP INDEX events_due_idx, events_label_idx;
ALTER TABLE events SET (fillfactor = 80);
CREATE TABLE queue (
    event_id        BIGINT PRIMARY KEY,
    lease_owner     TEXT,
    lease_until     TIMESTAMPTZ,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX queue_due_idx ON queue (next_attempt_at);

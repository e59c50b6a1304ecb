-- The small queue table both queue-table designs share: a row per unfinished reading.
CREATE TABLE queue (
    event_id        BIGINT PRIMARY KEY,
    lease_owner     TEXT,
    lease_until     TIMESTAMPTZ,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX queue_due_idx ON queue (next_attempt_at);

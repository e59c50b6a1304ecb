-- Design: the queue is a small table of its own (a row per unfinished reading, leased to the
-- receiving process at insert); `events` has no queue or label index and room on each page, so
-- recording the classification on the row is a HOT update (no index entry written).
DROP INDEX events_due_idx, events_label_idx;
ALTER TABLE events SET (fillfactor = 80);
\ir queue_table.sql

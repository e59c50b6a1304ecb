-- `events` and `classifications` become partitioned by `observed_at`, one partition per UTC day
-- each, so that a day's unique indexes stay small and hot while it is written, and readings
-- past their retention go as whole tables (DROP, not DELETE). Both tables share bounds and
-- partition names (events_p20261204, classifications_p20261204): a reading and its
-- classification live and die together. A key of a partitioned table must hold the partition
-- key, so the event's id is unique with its observed_at; every join between the tables and
-- from the queue names both, which prunes each look-up to its day. The rows present are
-- copied, ids and statuses unchanged.

-- The queue learns when its reading was observed, so that a claim reads each event from its
-- day's partition alone. A queue row is only ever added for a stored event.
ALTER TABLE queue ADD COLUMN observed_at TIMESTAMPTZ;
UPDATE queue q SET observed_at = e.observed_at FROM events e WHERE e.id = q.event_id;
ALTER TABLE queue ALTER COLUMN observed_at SET NOT NULL;

DROP VIEW event_states;
ALTER TABLE events RENAME TO events_unpartitioned;
ALTER TABLE events_unpartitioned RENAME CONSTRAINT events_reading_key TO events_unpartitioned_reading_key;
ALTER TABLE events_unpartitioned RENAME CONSTRAINT events_pkey TO events_unpartitioned_pkey;
ALTER INDEX events_newest_idx RENAME TO events_unpartitioned_newest_idx;
ALTER SEQUENCE events_id_seq RENAME TO events_unpartitioned_id_seq;
ALTER TABLE classifications RENAME TO classifications_unpartitioned;
ALTER TABLE classifications_unpartitioned RENAME CONSTRAINT classifications_pkey TO classifications_unpartitioned_pkey;
ALTER INDEX classifications_label_idx RENAME TO classifications_unpartitioned_label_idx;

CREATE TABLE events (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY,
    sensor_id           TEXT NOT NULL CONSTRAINT events_sensor_id_check
        CHECK (octet_length(sensor_id) BETWEEN 1 AND 128 AND sensor_id ~ '^[A-Za-z0-9._:/-]+$'),
    observed_at         TIMESTAMPTZ NOT NULL,
    interval_s          INTEGER NOT NULL
        CONSTRAINT events_interval_s_check CHECK (interval_s BETWEEN 1 AND 3600),
    lane                SMALLINT
        CONSTRAINT events_lane_check CHECK (lane BETWEEN 0 AND 32),
    vehicle_count       INTEGER NOT NULL
        CONSTRAINT events_vehicle_count_check CHECK (vehicle_count BETWEEN 0 AND 100000),
    avg_speed_kmh       DOUBLE PRECISION
        CONSTRAINT events_avg_speed_kmh_check CHECK (avg_speed_kmh BETWEEN 0 AND 400),
    occupancy_pct       DOUBLE PRECISION
        CONSTRAINT events_occupancy_pct_check CHECK (occupancy_pct BETWEEN 0 AND 100),
    speed_limit_kmh     SMALLINT
        CONSTRAINT events_speed_limit_kmh_check CHECK (speed_limit_kmh BETWEEN 5 AND 200),
    lanes               SMALLINT
        CONSTRAINT events_lanes_check CHECK (lanes BETWEEN 1 AND 32),
    received_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT events_pkey PRIMARY KEY (id, observed_at),
    -- One row per reading: a re-sent reading finds the first one, also when it has no lane.
    CONSTRAINT events_reading_key UNIQUE NULLS NOT DISTINCT (sensor_id, lane, observed_at)
) PARTITION BY RANGE (observed_at);
-- Newest-first listing (GET /v1/events) with a keyset cursor on (observed_at, id).
CREATE INDEX events_newest_idx ON events (observed_at DESC, id DESC);

CREATE TABLE classifications (
    event_id            BIGINT NOT NULL,
    -- The event's: the partition key, and a listing by label walks the index in time order.
    observed_at         TIMESTAMPTZ NOT NULL,
    label               TEXT NOT NULL
        CONSTRAINT classifications_label_check CHECK (label IN ('free_flow', 'moderate', 'heavy', 'congested', 'unknown')),
    level_of_service    TEXT
        CONSTRAINT classifications_level_of_service_check
        CHECK (level_of_service IN ('A', 'B', 'C', 'D', 'E', 'F')),
    flow_veh_h_lane     DOUBLE PRECISION NOT NULL
        CONSTRAINT classifications_flow_veh_h_lane_check CHECK (flow_veh_h_lane >= 0),
    density_veh_km_lane DOUBLE PRECISION
        CONSTRAINT classifications_density_veh_km_lane_check CHECK (density_veh_km_lane >= 0),
    confidence          DOUBLE PRECISION NOT NULL
        CONSTRAINT classifications_confidence_check CHECK (confidence BETWEEN 0 AND 1),
    flags               JSONB NOT NULL
        CONSTRAINT classifications_flags_check CHECK (jsonb_typeof(flags) = 'array'),
    reasons             JSONB NOT NULL
        CONSTRAINT classifications_reasons_check CHECK (jsonb_typeof(reasons) = 'array'),
    classifier_version  TEXT NOT NULL,
    classified_at       TIMESTAMPTZ NOT NULL,
    attempts            INTEGER NOT NULL
        CONSTRAINT classifications_attempts_check CHECK (attempts >= 0),
    CONSTRAINT classifications_pkey PRIMARY KEY (event_id, observed_at)
) PARTITION BY RANGE (observed_at);
CREATE INDEX classifications_label_idx
    ON classifications (label, observed_at DESC, event_id DESC);

-- Creates the day partitions of `events` and `classifications` holding the given moments
-- that do not exist yet, and returns how many days it created. Each is created as a table of
-- its own and then attached, which locks the parent only against schema changes
-- (SHARE UPDATE EXCLUSIVE), not against the reads and writes going on; concurrent callers
-- (replicas) take turns.
CREATE FUNCTION create_event_partitions(moments TIMESTAMPTZ[]) RETURNS INTEGER
LANGUAGE plpgsql AS $$
DECLARE
    day TIMESTAMPTZ;
    part TEXT;
    created INTEGER := 0;
BEGIN
    PERFORM pg_advisory_xact_lock('events'::regclass::oid::bigint);
    FOR day IN
        SELECT DISTINCT date_bin('1 day', m, timestamptz 'epoch') FROM unnest(moments) m
         WHERE m IS NOT NULL ORDER BY 1
    LOOP
        part := to_char(day AT TIME ZONE 'UTC', '"p"YYYYMMDD');
        CONTINUE WHEN to_regclass(quote_ident('events_' || part)) IS NOT NULL;
        EXECUTE format('CREATE TABLE %I (LIKE events INCLUDING ALL EXCLUDING IDENTITY)',
                       'events_' || part);
        EXECUTE format('CREATE TABLE %I (LIKE classifications INCLUDING ALL)',
                       'classifications_' || part);
        EXECUTE format('ALTER TABLE events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       'events_' || part, day, day + interval '1 day');
        EXECUTE format('ALTER TABLE classifications ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       'classifications_' || part, day, day + interval '1 day');
        created := created + 1;
    END LOOP;
    RETURN created;
END $$;

-- The copy: a partition for each day that has readings, then every row as it was.
SELECT create_event_partitions(ARRAY(SELECT DISTINCT date_bin('1 day', observed_at, timestamptz 'epoch')
                                       FROM events_unpartitioned));
INSERT INTO events OVERRIDING SYSTEM VALUE SELECT * FROM events_unpartitioned;
INSERT INTO classifications SELECT * FROM classifications_unpartitioned;
-- Ids are never reused: numbering goes on where it was.
SELECT setval(pg_get_serial_sequence('events', 'id'), last_value, is_called)
  FROM events_unpartitioned_id_seq;
DROP TABLE events_unpartitioned;
DROP TABLE classifications_unpartitioned;

-- Every stored reading is queued by the statement that stores it (see the migration that
-- introduced the queue), now with its observed_at.
CREATE OR REPLACE FUNCTION enqueue_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO queue (event_id, observed_at, next_attempt_at)
    SELECT id, observed_at, received_at FROM inserted;
    RETURN NULL;
END $$;
CREATE TRIGGER events_enqueue AFTER INSERT ON events
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION enqueue_events();

-- An event as the API shows it, as before; each join names the day.
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
  LEFT JOIN classifications c ON c.event_id = e.id AND c.observed_at = e.observed_at
  LEFT JOIN queue q ON q.event_id = e.id;

-- How far back what is stored reaches, once retention has removed something: readings (and
-- their classifications) from `readings_from`, rollups from `rollups_from`. One row.
CREATE TABLE retention_watermark (
    only_row      BOOLEAN PRIMARY KEY DEFAULT true CHECK (only_row),
    readings_from TIMESTAMPTZ,
    rollups_from  TIMESTAMPTZ
);
INSERT INTO retention_watermark DEFAULT VALUES;

-- Drops the day partitions of readings and classifications that end at or before `before`,
-- oldest first, and returns how many days it dropped. A day is kept while the rollups are not
-- built past its end (its sums would be lost with it) or while a reading of it still waits for
-- classification; readings given up on (failed) go with their day. The queue and lane_state
-- rows of the day go too, and the watermark moves to the end of the last day dropped. Waits at
-- most `wait` for the lock each drop takes on the parents (ACCESS EXCLUSIVE, briefly), so that
-- the reads and writes queued behind it are not held up for long: a day not dropped now is
-- dropped by a later call.
CREATE FUNCTION drop_event_partitions(before TIMESTAMPTZ, wait INTERVAL) RETURNS INTEGER
LANGUAGE plpgsql AS $$
DECLARE
    part RECORD;
    built TIMESTAMPTZ;
    dropped INTEGER := 0;
BEGIN
    PERFORM pg_advisory_xact_lock('events'::regclass::oid::bigint);
    PERFORM set_config('lock_timeout', (extract(epoch FROM wait) * 1000)::bigint::text, true);
    SELECT built_until INTO built FROM rollup_watermark;
    FOR part IN
        SELECT c.relname AS name,
               to_date(substr(c.relname, 9), 'YYYYMMDD')::timestamp AT TIME ZONE 'UTC' AS day
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'events'::regclass AND c.relname ~ '^events_p[0-9]{8}$'
         ORDER BY 2
    LOOP
        EXIT WHEN part.day + interval '1 day' > before
              OR built IS NULL OR part.day + interval '1 day' > built
              OR EXISTS (SELECT 1 FROM queue
                          WHERE NOT failed AND observed_at >= part.day
                            AND observed_at < part.day + interval '1 day');
        DELETE FROM queue
         WHERE observed_at >= part.day AND observed_at < part.day + interval '1 day';
        DELETE FROM lane_state WHERE observed_at < part.day + interval '1 day';
        EXECUTE format('DROP TABLE %I, %I', part.name, 'classifications_' || substr(part.name, 8));
        UPDATE retention_watermark SET readings_from = part.day + interval '1 day';
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END $$;

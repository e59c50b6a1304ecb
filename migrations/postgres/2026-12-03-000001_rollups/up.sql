-- Sums of each sensor lane's classified readings per 5 minutes and per hour (UTC-aligned: the
-- span holding the start of a reading's counting interval), from which a series answers
-- without reading every row of its window. Built once per span, after the span has closed, by
-- build_rollups() below; afterwards the statement that records classifications adds the share
-- of a reading classified late into a built span (and takes back the earlier share of one
-- classified again). Each column is a sum, so that spans add up to buckets
-- of any length aligned with them; readings not classified yet are read from the queue.
CREATE TABLE rollup_5m (
    sensor_id           TEXT NOT NULL,
    lane                SMALLINT,
    start               TIMESTAMPTZ NOT NULL,
    readings            INTEGER NOT NULL,
    vehicles            BIGINT NOT NULL,
    -- Seconds of counting intervals, and flow (veh/h/ln) weighted by them.
    seconds             BIGINT NOT NULL,
    flow_weighted       DOUBLE PRECISION NOT NULL,
    -- Vehicles of the readings with a speed, and speed (km/h) weighted by them.
    speed_vehicles      BIGINT NOT NULL,
    speed_weighted      DOUBLE PRECISION NOT NULL,
    -- Seconds of the readings with an occupancy, and occupancy (%) weighted by them.
    occupancy_seconds   BIGINT NOT NULL,
    occupancy_weighted  DOUBLE PRECISION NOT NULL,
    -- Seconds per label and per Level of Service.
    free_flow_s         BIGINT NOT NULL,
    moderate_s          BIGINT NOT NULL,
    heavy_s             BIGINT NOT NULL,
    congested_s         BIGINT NOT NULL,
    unknown_s           BIGINT NOT NULL,
    los_a_s             BIGINT NOT NULL,
    los_b_s             BIGINT NOT NULL,
    los_c_s             BIGINT NOT NULL,
    los_d_s             BIGINT NOT NULL,
    los_e_s             BIGINT NOT NULL,
    los_f_s             BIGINT NOT NULL,
    -- Readings per flag.
    flag_zero_flow_with_occupancy  INTEGER NOT NULL,
    flag_count_with_zero_occupancy INTEGER NOT NULL,
    flag_high_occupancy            INTEGER NOT NULL,
    flag_implausible_speed         INTEGER NOT NULL,
    flag_flow_above_capacity       INTEGER NOT NULL,
    flag_stuck                     INTEGER NOT NULL,
    flag_card_off                  INTEGER NOT NULL,
    flag_sudden_speed_drop         INTEGER NOT NULL,
    flag_gap                       INTEGER NOT NULL,
    CONSTRAINT rollup_5m_key UNIQUE NULLS NOT DISTINCT (sensor_id, lane, start)
) WITH (fillfactor = 70);
-- A built row is rewritten only by late readings: room on each page keeps those updates HOT.
ALTER TABLE rollup_5m SET (autovacuum_vacuum_scale_factor = 0.02);

CREATE TABLE rollup_1h (LIKE rollup_5m INCLUDING ALL) WITH (fillfactor = 70);
ALTER TABLE rollup_1h SET (autovacuum_vacuum_scale_factor = 0.02);

-- How far the rollups are built: every span starting before `built_until` is summed in them
-- (NULL: none yet). One row.
CREATE TABLE rollup_watermark (
    only_row    BOOLEAN PRIMARY KEY DEFAULT true CHECK (only_row),
    built_until TIMESTAMPTZ
);
INSERT INTO rollup_watermark DEFAULT VALUES;

-- Builds the 5-minute spans that start in [built_until, upto), at most `step` of time at once,
-- adds them to their hours' rows, and moves the watermark past them; returns the new watermark,
-- or NULL when nothing was due or another session is building. The first build starts an hour
-- before the earliest reading (a counting interval is at most an hour long). An hour's row
-- grows with its spans: it sums the built spans of its hour, so a series reads it only once
-- the whole hour is below the watermark.
--
-- No 5-minute span at or above the watermark has a row yet (classifications add shares only
-- below it), so its sums are plain inserts. The watermark row is locked FOR UPDATE before the
-- sums are read: the statements recording classifications read it FOR SHARE, so this waits
-- for those in flight to commit (and its sums, read by a later statement, see them), while
-- those that start meanwhile wait for this transaction and then read the new watermark, adding
-- their own shares. Each classification is thereby summed exactly once.
CREATE FUNCTION build_rollups(upto TIMESTAMPTZ, step INTERVAL) RETURNS TIMESTAMPTZ
LANGUAGE plpgsql AS $$
DECLARE
    done TIMESTAMPTZ;
    target TIMESTAMPTZ;
BEGIN
    -- One builder at a time, per watermark table (a database may hold several schemas).
    IF NOT pg_try_advisory_xact_lock('rollup_watermark'::regclass::oid::bigint) THEN
        RETURN NULL;
    END IF;
    SELECT built_until INTO done FROM rollup_watermark FOR UPDATE;
    IF done IS NULL THEN
        SELECT date_bin('5 minutes', min(observed_at) - interval '1 hour', timestamptz 'epoch')
          INTO done FROM events;
        IF done IS NULL THEN
            RETURN NULL;
        END IF;
    END IF;
    target := least(date_bin('5 minutes', upto, timestamptz 'epoch'),
                    date_bin('5 minutes', done + step, timestamptz 'epoch'));
    IF target <= done THEN
        RETURN NULL;
    END IF;
    INSERT INTO rollup_5m AS r (sensor_id, lane, start, readings, vehicles, seconds, flow_weighted, speed_vehicles, speed_weighted, occupancy_seconds, occupancy_weighted, free_flow_s, moderate_s, heavy_s, congested_s, unknown_s, los_a_s, los_b_s, los_c_s, los_d_s, los_e_s, los_f_s, flag_zero_flow_with_occupancy, flag_count_with_zero_occupancy, flag_high_occupancy, flag_implausible_speed, flag_flow_above_capacity, flag_stuck, flag_card_off, flag_sudden_speed_drop, flag_gap)
    SELECT e.sensor_id, e.lane,
           date_bin('5 minutes', e.observed_at - e.interval_s * interval '1 second',
                    timestamptz 'epoch') AS span,
           count(*),
           sum(e.vehicle_count),
           sum(e.interval_s),
           sum(c.flow_veh_h_lane * e.interval_s),
           sum(CASE WHEN e.avg_speed_kmh IS NOT NULL AND e.vehicle_count > 0
                    THEN e.vehicle_count ELSE 0 END),
           sum(CASE WHEN e.vehicle_count > 0
                    THEN coalesce(e.avg_speed_kmh * e.vehicle_count, 0) ELSE 0 END),
           sum(CASE WHEN e.occupancy_pct IS NOT NULL THEN e.interval_s ELSE 0 END),
           sum(coalesce(e.occupancy_pct * e.interval_s, 0)),
           sum(CASE c.label WHEN 'free_flow' THEN e.interval_s ELSE 0 END),
           sum(CASE c.label WHEN 'moderate' THEN e.interval_s ELSE 0 END),
           sum(CASE c.label WHEN 'heavy' THEN e.interval_s ELSE 0 END),
           sum(CASE c.label WHEN 'congested' THEN e.interval_s ELSE 0 END),
           sum(CASE c.label WHEN 'unknown' THEN e.interval_s ELSE 0 END),
           sum(CASE c.level_of_service WHEN 'A' THEN e.interval_s ELSE 0 END),
           sum(CASE c.level_of_service WHEN 'B' THEN e.interval_s ELSE 0 END),
           sum(CASE c.level_of_service WHEN 'C' THEN e.interval_s ELSE 0 END),
           sum(CASE c.level_of_service WHEN 'D' THEN e.interval_s ELSE 0 END),
           sum(CASE c.level_of_service WHEN 'E' THEN e.interval_s ELSE 0 END),
           sum(CASE c.level_of_service WHEN 'F' THEN e.interval_s ELSE 0 END),
           count(*) FILTER (WHERE c.flags ? 'zero_flow_with_occupancy'),
           count(*) FILTER (WHERE c.flags ? 'count_with_zero_occupancy'),
           count(*) FILTER (WHERE c.flags ? 'high_occupancy'),
           count(*) FILTER (WHERE c.flags ? 'implausible_speed'),
           count(*) FILTER (WHERE c.flags ? 'flow_above_capacity'),
           count(*) FILTER (WHERE c.flags ? 'stuck'),
           count(*) FILTER (WHERE c.flags ? 'card_off'),
           count(*) FILTER (WHERE c.flags ? 'sudden_speed_drop'),
           count(*) FILTER (WHERE c.flags ? 'gap')
      FROM events e JOIN classifications c ON c.event_id = e.id
     WHERE e.observed_at >= done AND e.observed_at < target + interval '1 hour'
       AND e.observed_at - e.interval_s * interval '1 second' >= done
       AND e.observed_at - e.interval_s * interval '1 second' < target
     GROUP BY 1, 2, 3
     ORDER BY 1, 2, 3;
    INSERT INTO rollup_1h AS r (sensor_id, lane, start, readings, vehicles, seconds, flow_weighted, speed_vehicles, speed_weighted, occupancy_seconds, occupancy_weighted, free_flow_s, moderate_s, heavy_s, congested_s, unknown_s, los_a_s, los_b_s, los_c_s, los_d_s, los_e_s, los_f_s, flag_zero_flow_with_occupancy, flag_count_with_zero_occupancy, flag_high_occupancy, flag_implausible_speed, flag_flow_above_capacity, flag_stuck, flag_card_off, flag_sudden_speed_drop, flag_gap)
    SELECT sensor_id, lane, date_bin('1 hour', start, timestamptz 'epoch'),
           sum(readings), sum(vehicles), sum(seconds), sum(flow_weighted), sum(speed_vehicles), sum(speed_weighted), sum(occupancy_seconds), sum(occupancy_weighted), sum(free_flow_s), sum(moderate_s), sum(heavy_s), sum(congested_s), sum(unknown_s), sum(los_a_s), sum(los_b_s), sum(los_c_s), sum(los_d_s), sum(los_e_s), sum(los_f_s), sum(flag_zero_flow_with_occupancy), sum(flag_count_with_zero_occupancy), sum(flag_high_occupancy), sum(flag_implausible_speed), sum(flag_flow_above_capacity), sum(flag_stuck), sum(flag_card_off), sum(flag_sudden_speed_drop), sum(flag_gap)
      FROM rollup_5m
     WHERE start >= done AND start < target
     GROUP BY 1, 2, 3
     ORDER BY 1, 2, 3
    ON CONFLICT (sensor_id, lane, start) DO UPDATE SET
        readings = r.readings + excluded.readings,
        vehicles = r.vehicles + excluded.vehicles,
        seconds = r.seconds + excluded.seconds,
        flow_weighted = r.flow_weighted + excluded.flow_weighted,
        speed_vehicles = r.speed_vehicles + excluded.speed_vehicles,
        speed_weighted = r.speed_weighted + excluded.speed_weighted,
        occupancy_seconds = r.occupancy_seconds + excluded.occupancy_seconds,
        occupancy_weighted = r.occupancy_weighted + excluded.occupancy_weighted,
        free_flow_s = r.free_flow_s + excluded.free_flow_s,
        moderate_s = r.moderate_s + excluded.moderate_s,
        heavy_s = r.heavy_s + excluded.heavy_s,
        congested_s = r.congested_s + excluded.congested_s,
        unknown_s = r.unknown_s + excluded.unknown_s,
        los_a_s = r.los_a_s + excluded.los_a_s,
        los_b_s = r.los_b_s + excluded.los_b_s,
        los_c_s = r.los_c_s + excluded.los_c_s,
        los_d_s = r.los_d_s + excluded.los_d_s,
        los_e_s = r.los_e_s + excluded.los_e_s,
        los_f_s = r.los_f_s + excluded.los_f_s,
        flag_zero_flow_with_occupancy = r.flag_zero_flow_with_occupancy + excluded.flag_zero_flow_with_occupancy,
        flag_count_with_zero_occupancy = r.flag_count_with_zero_occupancy + excluded.flag_count_with_zero_occupancy,
        flag_high_occupancy = r.flag_high_occupancy + excluded.flag_high_occupancy,
        flag_implausible_speed = r.flag_implausible_speed + excluded.flag_implausible_speed,
        flag_flow_above_capacity = r.flag_flow_above_capacity + excluded.flag_flow_above_capacity,
        flag_stuck = r.flag_stuck + excluded.flag_stuck,
        flag_card_off = r.flag_card_off + excluded.flag_card_off,
        flag_sudden_speed_drop = r.flag_sudden_speed_drop + excluded.flag_sudden_speed_drop,
        flag_gap = r.flag_gap + excluded.flag_gap;
    UPDATE rollup_watermark SET built_until = target;
    RETURN target;
END;
$$;

-- The latest classified reading of each sensor lane: the network's state now without a scan of
-- the readings, and the list of lanes from which the state at an earlier moment is probed (one
-- index lookup per lane). Written in the statement that records classifications; a row only
-- ever moves forward in observed_at, so a late reading never replaces a newer one.
CREATE TABLE lane_state (
    sensor_id           TEXT NOT NULL,
    lane                SMALLINT,
    event_id            BIGINT NOT NULL,
    observed_at         TIMESTAMPTZ NOT NULL,
    interval_s          INTEGER NOT NULL,
    vehicle_count       INTEGER NOT NULL,
    avg_speed_kmh       DOUBLE PRECISION,
    occupancy_pct       DOUBLE PRECISION,
    label               TEXT NOT NULL,
    level_of_service    TEXT,
    flow_veh_h_lane     DOUBLE PRECISION NOT NULL,
    density_veh_km_lane DOUBLE PRECISION,
    confidence          DOUBLE PRECISION NOT NULL,
    flags               JSONB NOT NULL,
    classified_at       TIMESTAMPTZ NOT NULL,
    CONSTRAINT lane_state_key UNIQUE NULLS NOT DISTINCT (sensor_id, lane)
) WITH (fillfactor = 50);
-- Rewritten many times a minute per lane: room on each page keeps the updates HOT (the key
-- never changes) and vacuum keeps up.
ALTER TABLE lane_state SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 5000
);

-- Rebuilds every row from the readings: the migration's fill, and a repair after a bulk load
-- or a restore that bypassed the workers.
CREATE FUNCTION rebuild_lane_state() RETURNS void LANGUAGE sql AS $$
    DELETE FROM lane_state;
    INSERT INTO lane_state
    SELECT DISTINCT ON (e.sensor_id, e.lane)
           e.sensor_id, e.lane, e.id, e.observed_at, e.interval_s, e.vehicle_count,
           e.avg_speed_kmh, e.occupancy_pct, c.label, c.level_of_service, c.flow_veh_h_lane,
           c.density_veh_km_lane, c.confidence, c.flags, c.classified_at
      FROM events e JOIN classifications c ON c.event_id = e.id
     ORDER BY e.sensor_id, e.lane, e.observed_at DESC;
$$;
SELECT rebuild_lane_state();

-- The latest classified reading of each sensor lane (see the PostgreSQL migration).
CREATE TABLE lane_state (
    sensor_id           TEXT NOT NULL,
    lane                INTEGER,
    event_id            INTEGER NOT NULL,
    observed_at         TIMESTAMPTZ NOT NULL,
    interval_s          INTEGER NOT NULL,
    vehicle_count       INTEGER NOT NULL,
    avg_speed_kmh       DOUBLE,
    occupancy_pct       DOUBLE,
    label               TEXT NOT NULL,
    level_of_service    TEXT,
    flow_veh_h_lane     DOUBLE NOT NULL,
    density_veh_km_lane DOUBLE,
    confidence          DOUBLE NOT NULL,
    flags               JSON NOT NULL,
    classified_at       TIMESTAMPTZ NOT NULL
);
-- SQLite treats NULLs as distinct in UNIQUE: a whole-carriageway lane is keyed as -1.
CREATE UNIQUE INDEX lane_state_key ON lane_state (sensor_id, ifnull(lane, -1));

INSERT INTO lane_state
SELECT sensor_id, lane, id, observed_at, interval_s, vehicle_count, avg_speed_kmh,
       occupancy_pct, label, level_of_service, flow_veh_h_lane, density_veh_km_lane,
       confidence, flags, classified_at
  FROM (SELECT e.sensor_id, e.lane, e.id, e.observed_at, e.interval_s, e.vehicle_count,
               e.avg_speed_kmh, e.occupancy_pct, c.label, c.level_of_service,
               c.flow_veh_h_lane, c.density_veh_km_lane, c.confidence, c.flags,
               c.classified_at,
               row_number() OVER (PARTITION BY e.sensor_id, e.lane
                                  ORDER BY e.observed_at DESC) AS newest
          FROM events e JOIN classifications c ON c.event_id = e.id)
 WHERE newest = 1;

-- Shared by every queue design: a source of new readings, 500 per call, each key unique (k from
-- a sequence), as one batch of POST /v1/events/batch would store them.
CREATE SEQUENCE bench_keys;
CREATE FUNCTION bench_rows() RETURNS TABLE (
    sensor_id text, observed_at timestamptz, interval_s int, lane smallint, vehicle_count int,
    avg_speed_kmh float8, occupancy_pct float8)
LANGUAGE sql AS $$
    SELECT 's' || (k % 1000), timestamptz '2026-01-01 00:00:00+00' + make_interval(secs => k),
           60, (k % 4)::smallint, (k % 120)::int, 60 + (k % 50)::float8, (k % 30)::float8
      FROM (SELECT nextval('bench_keys') AS k FROM generate_series(1, 500)) AS keys
$$;

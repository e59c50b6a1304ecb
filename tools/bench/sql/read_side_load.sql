-- A week of one-minute readings from :sensors sensors (one lane each), classified, for the
-- read-side benchmark (tools/bench/read_side.sh): written in time order, as a live network
-- writes them, so one sensor's rows lie spread over the table as they would in production.
-- Run on a migrated database: psql -v sensors=1000 -v days=7 -f read_side_load.sql
\set ON_ERROR_STOP on
ALTER TABLE events DISABLE TRIGGER events_enqueue;
SELECT create_event_partitions(ARRAY(
           SELECT generate_series(now() - make_interval(days => :days + 1), now(), interval '1 day')));

INSERT INTO sensors (sensor_id, name, road, direction, lon, lat, lanes, speed_limit_kmh,
                     time_zone, updated_at)
SELECT format('bench-%s', lpad(s::text, 4, '0')), format('Bench sensor %s', s),
       'A' || (s % 10), 'northbound', 13.0 + (s % 40) * 0.02, 52.3 + (s / 40) * 0.01, 3, 100,
       'Europe/Berlin', now()
  FROM generate_series(0, :sensors - 1) AS s;

INSERT INTO events (sensor_id, observed_at, interval_s, lane, vehicle_count, avg_speed_kmh,
                    occupancy_pct, speed_limit_kmh, lanes, received_at)
SELECT format('bench-%s', lpad(s::text, 4, '0')), t, 60, 1,
       10 + (s + extract(minute FROM t)::int) % 20,
       60 + (s * 7 + extract(minute FROM t)::int) % 50,
       4 + (s + extract(hour FROM t)::int) % 20,
       100, 3, t + interval '1 second'
  FROM generate_series(date_trunc('minute', now()) - make_interval(days => :days)
                           + interval '1 minute',
                       date_trunc('minute', now()), interval '1 minute') AS t,
       generate_series(0, :sensors - 1) AS s;

-- Every fourth sensor jams in the morning rush (Berlin time), every sensor is heavy in the
-- evening one.
INSERT INTO classifications (event_id, observed_at, label, level_of_service, flow_veh_h_lane,
                             density_veh_km_lane, confidence, flags, reasons,
                             classifier_version, classified_at, attempts)
SELECT e.id, e.observed_at, v.label, v.los, e.vehicle_count * 60.0,
       e.vehicle_count * 60.0 / e.avg_speed_kmh, 0.9,
       CASE WHEN e.id % 97 = 0 THEN '["gap"]'::jsonb ELSE '[]'::jsonb END,
       '["benchmark data"]'::jsonb, 'bench', e.received_at, 1
  FROM events e
  CROSS JOIN LATERAL (
      SELECT CASE
                 WHEN substr(e.sensor_id, 7)::int % 4 = 0
                      AND extract(hour FROM e.observed_at AT TIME ZONE 'Europe/Berlin') BETWEEN 7 AND 8
                     THEN 'congested'
                 WHEN extract(hour FROM e.observed_at AT TIME ZONE 'Europe/Berlin') BETWEEN 16 AND 17
                     THEN 'heavy'
                 ELSE 'free_flow'
             END AS label) AS l
  CROSS JOIN LATERAL (
      SELECT l.label, CASE l.label WHEN 'congested' THEN 'F' WHEN 'heavy' THEN 'E' ELSE 'B' END AS los
  ) AS v
 WHERE e.sensor_id LIKE 'bench-%';

SELECT rebuild_lane_state();
SELECT build_rollups(now(), interval '100 years');

ALTER TABLE events ENABLE TRIGGER events_enqueue;
VACUUM ANALYZE events, classifications, lane_state, rollup_5m, rollup_1h, sensors;

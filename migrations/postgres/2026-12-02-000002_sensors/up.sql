-- What is known about a sensor besides its readings: a row per sensor that has metadata. A
-- sensor that only sends readings has none and still exists (its readings are accepted). The
-- rules of each value live in the model (traffic_model::sensor); the checks here keep rows that
-- other writers add within the same bounds.
CREATE TABLE sensors (
    sensor_id                   TEXT PRIMARY KEY
        CHECK (octet_length(sensor_id) BETWEEN 1 AND 128 AND sensor_id ~ '^[A-Za-z0-9._:/-]+$'),
    name                        TEXT CHECK (char_length(name) BETWEEN 1 AND 200),
    road                        TEXT CHECK (char_length(road) BETWEEN 1 AND 100),
    direction                   TEXT CHECK (char_length(direction) BETWEEN 1 AND 50),
    lon                         DOUBLE PRECISION CHECK (lon BETWEEN -180 AND 180),
    lat                         DOUBLE PRECISION CHECK (lat BETWEEN -90 AND 90),
    lanes                       SMALLINT CHECK (lanes BETWEEN 1 AND 32),
    speed_limit_kmh             SMALLINT CHECK (speed_limit_kmh BETWEEN 5 AND 200),
    free_flow_speed_kmh         DOUBLE PRECISION CHECK (free_flow_speed_kmh BETWEEN 5 AND 250),
    effective_vehicle_length_m  DOUBLE PRECISION CHECK (effective_vehicle_length_m BETWEEN 2 AND 30),
    time_zone                   TEXT CHECK (char_length(time_zone) BETWEEN 1 AND 64),
    updated_at                  TIMESTAMPTZ NOT NULL,
    CONSTRAINT sensors_location_whole CHECK ((lon IS NULL) = (lat IS NULL))
);

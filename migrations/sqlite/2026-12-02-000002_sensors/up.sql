-- What is known about a sensor besides its readings (see the PostgreSQL migration).
CREATE TABLE sensors (
    sensor_id                   TEXT PRIMARY KEY NOT NULL CHECK (
                                    length(sensor_id) BETWEEN 1 AND 128
                                    AND sensor_id NOT GLOB '*[^A-Za-z0-9._:/-]*'),
    name                        TEXT CHECK (length(name) BETWEEN 1 AND 200),
    road                        TEXT CHECK (length(road) BETWEEN 1 AND 100),
    direction                   TEXT CHECK (length(direction) BETWEEN 1 AND 50),
    lon                         REAL CHECK (lon BETWEEN -180 AND 180),
    lat                         REAL CHECK (lat BETWEEN -90 AND 90),
    lanes                       INTEGER CHECK (lanes BETWEEN 1 AND 32),
    speed_limit_kmh             INTEGER CHECK (speed_limit_kmh BETWEEN 5 AND 200),
    free_flow_speed_kmh         REAL CHECK (free_flow_speed_kmh BETWEEN 5 AND 250),
    effective_vehicle_length_m  REAL CHECK (effective_vehicle_length_m BETWEEN 2 AND 30),
    time_zone                   TEXT CHECK (length(time_zone) BETWEEN 1 AND 64),
    updated_at                  TIMESTAMPTZ NOT NULL,
    CHECK ((lon IS NULL) = (lat IS NULL))
);

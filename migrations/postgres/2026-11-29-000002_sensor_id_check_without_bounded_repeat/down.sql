ALTER TABLE events
    DROP CONSTRAINT events_sensor_id_check,
    ADD CONSTRAINT events_sensor_id_check CHECK (sensor_id ~ '^[A-Za-z0-9._:/-]{1,128}$');

//! The lanes of one sensor on PostgreSQL, found by a skip scan: one probe of the
//! `(sensor_id, lane, observed_at)` index per lane instead of a walk over every reading. A
//! query that names the lanes then reads each one's range of that index only.

/// `WITH RECURSIVE lanes(lane)`: the numbered lanes of sensor `$1` (and a final `NULL` row,
/// which callers skip), for a statement to go on from.
macro_rules! lanes_of_sensor {
    () => {
        "WITH RECURSIVE lanes(lane) AS ( \
            SELECT min(lane) FROM events WHERE sensor_id = $1 \
            UNION ALL \
            SELECT (SELECT min(lane) FROM events WHERE sensor_id = $1 AND lane > l.lane) \
              FROM lanes l WHERE l.lane IS NOT NULL) "
    };
}

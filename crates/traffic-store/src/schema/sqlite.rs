// The SQLite twin of `postgres.rs`, kept in step with `migrations/sqlite` (see docs/architecture.md).
// `id` is read as BigInt: SQLite integers are 64-bit, and both backends then share one Rust type.

diesel::table! {
    classifications (event_id) {
        event_id -> BigInt,
        observed_at -> TimestamptzSqlite,
        label -> Text,
        level_of_service -> Nullable<Text>,
        flow_veh_h_lane -> Double,
        density_veh_km_lane -> Nullable<Double>,
        confidence -> Double,
        flags -> Json,
        reasons -> Json,
        classifier_version -> Text,
        classified_at -> TimestamptzSqlite,
        attempts -> Integer,
    }
}

diesel::table! {
    events (id) {
        id -> BigInt,
        sensor_id -> Text,
        observed_at -> TimestamptzSqlite,
        interval_s -> Integer,
        lane -> Nullable<SmallInt>,
        vehicle_count -> Integer,
        avg_speed_kmh -> Nullable<Double>,
        occupancy_pct -> Nullable<Double>,
        speed_limit_kmh -> Nullable<SmallInt>,
        lanes -> Nullable<SmallInt>,
        received_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    lane_state (sensor_id, lane) {
        sensor_id -> Text,
        lane -> Nullable<SmallInt>,
        event_id -> BigInt,
        observed_at -> TimestamptzSqlite,
        interval_s -> Integer,
        vehicle_count -> Integer,
        avg_speed_kmh -> Nullable<Double>,
        occupancy_pct -> Nullable<Double>,
        label -> Text,
        level_of_service -> Nullable<Text>,
        flow_veh_h_lane -> Double,
        density_veh_km_lane -> Nullable<Double>,
        confidence -> Double,
        flags -> Json,
        classified_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    queue (event_id) {
        event_id -> BigInt,
        next_attempt_at -> TimestamptzSqlite,
        attempts -> Integer,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<TimestamptzSqlite>,
        last_error -> Nullable<Text>,
        failed -> Bool,
        requeued -> Bool,
    }
}

diesel::allow_tables_to_appear_in_same_query!(classifications, events, lane_state, queue, sensors,);

// The view `event_states` (print-schema does not see views): every event with its
// classification and queue state, under the column names the API's `Event` reads.
diesel::table! {
    event_states (id) {
        id -> BigInt,
        sensor_id -> Text,
        observed_at -> TimestamptzSqlite,
        interval_s -> Integer,
        lane -> Nullable<SmallInt>,
        vehicle_count -> Integer,
        avg_speed_kmh -> Nullable<Double>,
        occupancy_pct -> Nullable<Double>,
        speed_limit_kmh -> Nullable<SmallInt>,
        lanes -> Nullable<SmallInt>,
        received_at -> TimestamptzSqlite,
        status -> Text,
        label -> Nullable<Text>,
        level_of_service -> Nullable<Text>,
        flow_veh_h_lane -> Nullable<Double>,
        density_veh_km_lane -> Nullable<Double>,
        confidence -> Nullable<Double>,
        flags -> Nullable<Json>,
        reasons -> Nullable<Json>,
        classifier_version -> Nullable<Text>,
        classified_at -> Nullable<TimestamptzSqlite>,
        attempts -> Integer,
        next_attempt_at -> Nullable<TimestamptzSqlite>,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<TimestamptzSqlite>,
        last_error -> Nullable<Text>,
        requeued -> Bool,
        classification_observed_at -> Nullable<TimestamptzSqlite>,
        classification_event_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    sensors (sensor_id) {
        sensor_id -> Text,
        name -> Nullable<Text>,
        road -> Nullable<Text>,
        direction -> Nullable<Text>,
        lon -> Nullable<Double>,
        lat -> Nullable<Double>,
        lanes -> Nullable<SmallInt>,
        speed_limit_kmh -> Nullable<SmallInt>,
        free_flow_speed_kmh -> Nullable<Double>,
        effective_vehicle_length_m -> Nullable<Double>,
        time_zone -> Nullable<Text>,
        updated_at -> TimestamptzSqlite,
    }
}

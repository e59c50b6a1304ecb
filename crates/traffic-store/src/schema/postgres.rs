// @generated automatically by Diesel CLI.

diesel::table! {
    classifications (event_id) {
        event_id -> Int8,
        observed_at -> Timestamptz,
        label -> Text,
        level_of_service -> Nullable<Text>,
        flow_veh_h_lane -> Float8,
        density_veh_km_lane -> Nullable<Float8>,
        confidence -> Float8,
        flags -> Jsonb,
        reasons -> Jsonb,
        classifier_version -> Text,
        classified_at -> Timestamptz,
        attempts -> Int4,
    }
}

diesel::table! {
    events (id) {
        id -> Int8,
        sensor_id -> Text,
        observed_at -> Timestamptz,
        interval_s -> Int4,
        lane -> Nullable<Int2>,
        vehicle_count -> Int4,
        avg_speed_kmh -> Nullable<Float8>,
        occupancy_pct -> Nullable<Float8>,
        speed_limit_kmh -> Nullable<Int2>,
        lanes -> Nullable<Int2>,
        received_at -> Timestamptz,
    }
}

diesel::table! {
    lane_state (sensor_id, lane) {
        sensor_id -> Text,
        lane -> Nullable<Int2>,
        event_id -> Int8,
        observed_at -> Timestamptz,
        interval_s -> Int4,
        vehicle_count -> Int4,
        avg_speed_kmh -> Nullable<Float8>,
        occupancy_pct -> Nullable<Float8>,
        label -> Text,
        level_of_service -> Nullable<Text>,
        flow_veh_h_lane -> Float8,
        density_veh_km_lane -> Nullable<Float8>,
        confidence -> Float8,
        flags -> Jsonb,
        classified_at -> Timestamptz,
    }
}

diesel::table! {
    queue (event_id) {
        event_id -> Int8,
        next_attempt_at -> Timestamptz,
        attempts -> Int4,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
        failed -> Bool,
        requeued -> Bool,
        observed_at -> Timestamptz,
    }
}

diesel::table! {
    sensors (sensor_id) {
        sensor_id -> Text,
        name -> Nullable<Text>,
        road -> Nullable<Text>,
        direction -> Nullable<Text>,
        lon -> Nullable<Float8>,
        lat -> Nullable<Float8>,
        lanes -> Nullable<Int2>,
        speed_limit_kmh -> Nullable<Int2>,
        free_flow_speed_kmh -> Nullable<Float8>,
        effective_vehicle_length_m -> Nullable<Float8>,
        time_zone -> Nullable<Text>,
        updated_at -> Timestamptz,
    }
}

diesel::allow_tables_to_appear_in_same_query!(classifications, events, lane_state, queue, sensors,);

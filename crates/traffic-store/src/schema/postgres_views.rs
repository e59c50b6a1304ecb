// The view `event_states` (print-schema does not see views): every event with its
// classification and queue state, under the column names the API's `Event` reads.
diesel::table! {
    event_states (id) {
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
        status -> Text,
        label -> Nullable<Text>,
        level_of_service -> Nullable<Text>,
        flow_veh_h_lane -> Nullable<Float8>,
        density_veh_km_lane -> Nullable<Float8>,
        confidence -> Nullable<Float8>,
        flags -> Nullable<Jsonb>,
        reasons -> Nullable<Jsonb>,
        classifier_version -> Nullable<Text>,
        classified_at -> Nullable<Timestamptz>,
        attempts -> Int4,
        next_attempt_at -> Nullable<Timestamptz>,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
        requeued -> Bool,
    }
}

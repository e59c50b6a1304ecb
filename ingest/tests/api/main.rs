//! The REST API, exercised over HTTP against the running service on port 0. Every case runs
//! twice: `sqlite::*` on a temporary file, and `postgres::*` on a fresh schema of
//! `TEST_DATABASE_URL` (skipped, saying so, when it is unset).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod batch;
mod browser;
mod by_id;
mod cache;
mod classification;
mod dashboard;
mod docs;
mod durability;
mod events;
mod formats;
mod http;
mod listing;
mod network_state;
mod probes;
mod rate_limit;
mod redis_server;
mod retention;
mod sensor_metadata;
mod sensors;
mod series;
mod simulate;
mod stream;
mod support;
mod transitions;

/// Generates `sqlite::case` and `postgres::case` for every `module: [case, …]`, each calling
/// `crate::module::case(backend)`. `#[ignore = "bug: …"]` before a case marks a known bug.
macro_rules! api_suite {
    ($($module:ident: [$($(#[ignore = $why:literal])? $case:ident),* $(,)?]),* $(,)?) => {
        mod sqlite {
            use crate::support::Backend;
            $($(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                $(#[ignore = $why])?
                async fn $case() {
                    crate::$module::$case(Backend::Sqlite).await;
                }
            )*)*
        }

        mod postgres {
            use crate::support::Backend;
            $($(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                $(#[ignore = $why])?
                async fn $case() {
                    if Backend::Postgres.available() {
                        crate::$module::$case(Backend::Postgres).await;
                    }
                }
            )*)*
        }
    };
}

api_suite! {
    retention: [readings_older_than_the_retention_are_refused_and_expired_days_are_said_so],
    events: [
        a_valid_reading_is_stored_and_answered_with_201_and_its_location,
        a_resent_reading_returns_the_first_event_with_200_and_stores_one_row,
        an_invalid_reading_is_refused_with_422_listing_every_bad_field,
        a_reading_from_the_future_is_refused_with_422,
        malformed_json_is_refused_with_400,
        a_body_that_is_not_json_by_content_type_is_refused_with_415,
        a_body_over_the_limit_is_refused_with_413,
        a_gzip_body_is_accepted,
        a_gzip_body_that_inflates_beyond_the_limit_is_refused_with_413,
        an_unsupported_content_encoding_is_refused_with_415,
    ],
    batch: [
        a_json_batch_stores_the_valid_readings_and_lists_the_invalid_ones,
        an_ndjson_batch_rejects_a_line_that_is_not_json_by_its_index,
        an_ndjson_index_is_the_line_number_even_after_blank_lines,
        a_resent_batch_is_all_duplicates,
        a_batch_of_more_than_10000_readings_is_refused_with_413,
        a_batch_of_exactly_10000_readings_is_stored,
        a_gzip_ndjson_batch_is_accepted,
        a_batch_over_the_byte_limit_is_refused_with_413,
        a_malformed_or_mistyped_batch_is_refused,
    ],
    listing: [
        filters_combine_and_results_come_newest_first,
        the_page_size_defaults_to_100_and_is_at_most_1000,
        every_invalid_parameter_is_listed_in_one_400,
        an_unknown_query_parameter_is_refused_with_400,
        a_bad_cursor_is_refused_with_400,
        next_cursor_is_null_on_the_last_page,
        a_cursor_walk_sees_every_row_once_while_rows_keep_arriving,
    ],
    by_id: [
        an_event_is_fetched_by_id,
        an_unknown_or_malformed_event_id_is_a_404_problem,
        requeueing_a_claimed_event_answers_202_with_it_pending_again,
        requeueing_a_classified_event_keeps_its_classification_visible,
        requeueing_an_unknown_event_is_a_404_problem,
    ],
    sensor_metadata: [
        metadata_is_put_patched_and_shown_with_the_sensor,
        a_patch_of_a_sensor_without_metadata_creates_it,
        invalid_metadata_is_a_422_naming_every_field_and_changes_nothing,
        metadata_writes_need_a_key_when_keys_are_configured,
    ],
    network_state: [
        the_state_holds_each_lane_s_latest_classification_with_its_age,
        the_state_filters_by_road_place_label_and_flags,
        bad_state_parameters_are_named_in_one_400,
    ],
    transitions: [
        transitions_list_label_changes_in_time_order,
        bad_transition_windows_are_refused_with_400,
    ],
    formats: [
        reads_answer_in_csv_when_asked,
        sensors_and_state_answer_in_geojson_when_asked,
        a_representation_not_offered_is_a_406_problem,
    ],
    cache: [
        a_second_read_is_a_hit_with_the_same_etag_and_if_none_match_gets_304,
        without_redis_answers_carry_validators_and_none_is_cached,
        every_kind_of_write_retires_the_views_it_changes,
        two_replicas_never_serve_a_view_missing_an_acknowledged_write,
        with_redis_failing_every_request_is_answered_and_no_view_is_stale,
        settled_series_buckets_are_cached_until_a_late_write,
    ],
    rate_limit: [
        readings_over_the_rate_get_429_with_retry_after_and_a_batch_counts_its_readings,
        the_limit_holds_across_two_replicas_and_fails_open_without_redis,
    ],
    stream: [
        classified_events_and_transitions_reach_stream_clients,
        a_late_reading_moves_the_transition_and_the_stream_says_so,
        a_client_resumes_with_last_event_id,
        bad_stream_requests_are_refused,
        with_redis_another_replica_s_clients_hear_through_pub_sub,
    ],
    dashboard: [
        a_jam_turns_the_marker_and_row_congested_live_and_the_sensor_page_charts_it,
        with_read_keys_required_the_page_asks_for_a_key_once_then_works,
        without_tiles_the_markers_stand_on_a_plain_background,
        the_api_reference_renders_offline,
        updates_take_less_than_a_frame_with_1000_sensors_at_50_a_second,
        the_pages_pass_wcag_aa_checks_and_work_from_the_keyboard,
    ],
    series: [
        local_days_span_23_to_25_hours_and_buckets_sum_their_readings,
        bad_series_requests_are_refused,
    ],
    sensors: [
        sensors_are_listed_in_id_order_with_each_lane_s_latest_state,
        the_sensor_list_filters_by_road_place_label_and_flags,
        the_sensor_list_pages_with_limit_and_after,
        a_sensor_summary_counts_its_readings_by_label_over_the_window,
        an_unknown_sensor_is_a_404_problem,
        a_bad_window_is_refused_with_400,
        a_sensor_id_with_a_slash_is_found_percent_encoded,
        next_after_is_null_on_a_full_last_page,
    ],
    probes: [
        health_answers_200_without_touching_the_database,
        ready_answers_200_on_a_migrated_database,
        an_unreachable_database_means_503_everywhere_and_nothing_written,
        metrics_count_requests_readings_queue_depth_and_latency,
        metrics_name_unmatched_requests_without_their_path,
    ],
    docs: [
        the_openapi_document_is_3_1_and_describes_every_route,
        the_reading_schema_carries_the_reading_rules,
        every_documented_operation_is_served,
        the_docs_page_is_html_pointing_at_the_document,
        successful_responses_match_their_documented_schemas,
        problems_match_the_documented_problem_schema,
        the_reading_schema_admits_every_reading_the_api_accepts,
        documented_query_limits_are_the_enforced_ones,
    ],
    auth: [
        writes_need_a_valid_key_when_keys_are_configured,
        reads_need_no_key_unless_configured_so,
        reads_need_a_key_when_read_keys_are_required,
        the_bearer_scheme_is_case_insensitive,
    ],
    http: [
        a_sane_request_id_is_echoed,
        a_request_without_an_id_gets_a_fresh_one,
        an_insane_request_id_is_replaced,
        requests_no_route_serves_are_404_or_405_problems,
        a_405_lists_the_allowed_methods,
    ],
    classification: [
        posted_readings_are_classified_by_the_workers,
        a_requeued_event_is_classified_again,
        a_reading_is_judged_with_the_stored_history_of_its_lane,
        a_stream_of_single_posts_is_classified_in_a_few_gathered_calls,
    ],
    durability: [
        a_client_hanging_up_does_not_cancel_the_write,
        the_pool_stays_healthy_after_hang_ups,
    ],
    simulate: [
        a_simulated_morning_is_stored_classified_and_its_incident_detected,
    ],
}

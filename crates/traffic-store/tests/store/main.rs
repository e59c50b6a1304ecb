//! The store suite, generated once per backend: `sqlite::*` on a temporary file, and
//! `postgres::*` on a fresh schema of `TEST_DATABASE_URL` (skipped, saying so, when unset).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cases;
mod retention;
mod support;

macro_rules! store_suite {
    (migrated: [$($case:ident),* $(,)?], empty: [$($empty_case:ident),* $(,)?]) => {
        mod sqlite {
            use crate::support::TestDb;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::cases::$case(&TestDb::sqlite(true).await).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $empty_case() {
                    crate::cases::$empty_case(&TestDb::sqlite(false).await).await;
                }
            )*
        }

        mod postgres {
            use crate::support::TestDb;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    if let Some(db) = TestDb::postgres(true).await {
                        crate::cases::$case(&db).await;
                    }
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $empty_case() {
                    if let Some(db) = TestDb::postgres(false).await {
                        crate::cases::$empty_case(&db).await;
                    }
                }
            )*
        }
    };
}

store_suite! {
    migrated: [
        insert_stores_a_pending_event_with_every_field,
        a_resent_reading_returns_the_first_row_as_a_duplicate,
        every_accepted_time_is_stored_under_its_own_key_and_never_shadows_a_neighbour,
        grouped_inserts_report_fresh_and_duplicate_readings_to_each_caller,
        a_counted_batch_stores_every_field_and_counts_repeats_as_duplicates,
        concurrent_inserts_of_one_reading_yield_one_row,
        concurrent_single_inserts_share_statements_and_each_gets_its_own_row,
        get_of_an_unknown_id_is_none,
        the_latest_reading_of_a_sensor_is_the_latest_of_all_its_lanes,
        label_counts_cover_one_sensor_over_a_half_open_window,
        list_filters_and_orders_newest_first,
        a_cursor_walk_sees_every_preexisting_row_once_while_rows_arrive,
        concurrent_patches_of_one_sensor_each_keep_their_change,
        claim_leases_due_events_oldest_first_and_counts_an_attempt,
        two_pools_claiming_concurrently_never_get_the_same_event,
        complete_records_the_classification_only_under_a_live_lease,
        a_multi_row_completion_records_only_the_events_still_leased_to_its_owner,
        failures_back_off_or_end_failed_and_release_refunds_the_attempt,
        requeue_makes_any_event_due_again_with_a_fresh_budget,
        history_is_the_last_readings_of_one_sensor_lane_oldest_first,
        counts_by_status_counts_every_status,
        cancelled_calls_finish_their_writes_and_leave_the_pool_healthy,
        the_database_refuses_sensor_ids_the_rules_reject,
        migrations_are_idempotent_and_safe_to_run_concurrently,
        recent_history_takes_the_last_readings_of_each_lane_within_the_window,
        the_queue_is_vacuumed_once_enough_rows_died,
        a_walk_by_label_pages_newest_first_within_its_window,
        lane_states_hold_each_lane_s_latest_classification_now_and_at_any_moment,
        transitions_are_label_changes_in_lane_order_and_follow_late_readings,
        congestion_periods_are_those_the_label_transitions_give,
        a_day_without_a_partition_gets_one_for_its_readings,
        retention_removes_whole_days_and_series_say_what_they_are_summed_from,
        series_from_rollups_equal_series_from_every_reading,
        rollup_builds_racing_classification_sum_each_reading_once,
    ],
    empty: [
        concurrent_first_starts_migrate_an_empty_database_once,
        an_upgrade_keeps_every_event_in_its_status,
        an_upgrade_to_day_partitions_keeps_every_event_in_its_status,
    ]
}

//! Day partitions (PostgreSQL), retention, and the upgrade of an unpartitioned database.

use chrono::{DateTime, TimeDelta, Utc};
use traffic_model::classification::Label;
use traffic_model::reading::{Reading, SensorId};
use traffic_model::series::{BucketSize, SeriesRetention};
use traffic_store::test_util::reading_json_at;
use traffic_store::{Retained, SeriesOutcome, Status, Store};

use crate::cases::{classify_due, verdict};
use crate::support::{TestDb, minute};

fn at(raw: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(raw)
        .expect("a test time")
        .with_timezone(&Utc)
}

fn reading_at(sensor: &str, lane: Option<u8>, when: DateTime<Utc>) -> Reading {
    Reading::from_json(reading_json_at(sensor, lane, when), Utc::now()).expect("a test reading")
}

/// Partitions of `parent` (PostgreSQL).
async fn partitions(db: &TestDb, parent: &str) -> i64 {
    db.int(&format!(
        "SELECT count(*) AS v FROM pg_inherits WHERE inhparent = '{parent}'::regclass"
    ))
    .await
}

pub async fn a_day_without_a_partition_gets_one_for_its_readings(db: &TestDb) {
    let store = db.store();
    let old = at("2019-03-01T12:00:00Z");
    let single = store.insert(reading_at("p", None, old)).await.unwrap();
    assert!(!single.duplicate);
    let day = TimeDelta::days(1);
    let batch = vec![
        reading_at("p", Some(1), old),
        reading_at("p", None, old + day),
        reading_at("p", None, old + day * 2),
    ];
    let counts = store.insert_many_counted(batch).await.unwrap();
    assert_eq!((counts.inserted, counts.duplicates), (3, 0));
    // Stored and found again, where a retry could have stored it twice.
    let again = store.insert(reading_at("p", None, old)).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.event.id, single.event.id);
    assert_eq!(db.int("SELECT count(*) AS v FROM events").await, 4);

    let now = Utc::now();
    if db.is_postgres() {
        assert_eq!(partitions(db, "events").await, 3);
        // Today and three days ahead, once; each day of readings has its classifications'.
        assert_eq!(store.create_partitions_ahead(now, 3).await.unwrap(), 4);
        assert_eq!(store.create_partitions_ahead(now, 3).await.unwrap(), 0);
        assert_eq!(partitions(db, "events").await, 7);
        assert_eq!(partitions(db, "classifications").await, 7);

        // The partitions written are analysed once their changes are counted (the server's
        // counters arrive within a second or so), and only those.
        let reltuples = |day: &'static str| async move {
            db.int(&format!(
                "SELECT reltuples::bigint AS v FROM pg_class WHERE oid = 'events_p{day}'::regclass"
            ))
            .await
        };
        assert_eq!(reltuples("20190301").await, -1, "never analysed yet");
        let mut analyzed = 0;
        for _ in 0..100 {
            analyzed += store.analyze_partitions(1).await.unwrap();
            if reltuples("20190301").await == 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(reltuples("20190301").await, 2);
        assert!((1..=3).contains(&analyzed), "{analyzed}");
        assert_eq!(store.analyze_partitions(1_000).await.unwrap(), 0);
    } else {
        assert_eq!(store.analyze_partitions(1).await.unwrap(), 0);
        assert_eq!(store.create_partitions_ahead(now, 3).await.unwrap(), 0);
    }
}

/// The UTC midnight of t0's day, plus `days`.
fn midnight(days: i64) -> DateTime<Utc> {
    at("2026-03-02T00:00:00Z") + TimeDelta::days(days)
}

/// `sensor`'s series on lane 1 over `[from, from + 2 h)`.
async fn two_hours(store: &Store, size: BucketSize, from: DateTime<Utc>) -> SeriesOutcome {
    let sensor = SensorId::parse("ret").unwrap();
    store
        .series(sensor, Some(1), size, from, from + TimeDelta::hours(2), 200)
        .await
        .unwrap()
}

fn readings_per_bucket(outcome: SeriesOutcome) -> (Vec<u32>, Option<SeriesRetention>) {
    match outcome {
        SeriesOutcome::Series(series) => (
            series.buckets.iter().map(|b| b.readings).collect(),
            series.retention,
        ),
        other => panic!("no series: {other:?}"),
    }
}

pub async fn retention_removes_whole_days_and_series_say_what_they_are_summed_from(db: &TestDb) {
    let store = db.store();
    // Three days from t0 (07:00 UTC), a reading every 10 minutes for two hours on lane 1.
    let day = |d: i64| minute(d * 24 * 60);
    let mut readings = Vec::new();
    for d in 0..3 {
        for k in 0..12 {
            // A 1-minute interval ending a minute past each 10: each starts in its bucket.
            readings.push(reading_at(
                "ret",
                Some(1),
                day(d) + TimeDelta::minutes(10 * k + 1),
            ));
        }
    }
    store.insert_many_counted(readings).await.unwrap();
    assert_eq!(classify_due(store, |_| verdict(Label::Heavy)).await, 36);
    let first = db.int("SELECT min(id) AS v FROM events").await;
    // A reading of the second day still waits for its classification.
    let waiting = store
        .insert(reading_at("ret", Some(2), day(1)))
        .await
        .unwrap()
        .event
        .id;
    while store
        .build_rollups(day(3), TimeDelta::hours(24))
        .await
        .unwrap()
        .is_some()
    {}
    let (kept, none) = readings_per_bucket(two_hours(store, BucketSize::Hour, day(0)).await);
    assert_eq!((kept.clone(), none), (vec![6, 6], None));

    // Readings before the third day expire.
    let removed = store.remove_expired(Some(midnight(2)), None).await.unwrap();
    let retained = store.retained().await.unwrap();
    if db.is_postgres() {
        // The first day goes whole; the second stays while a reading of it waits.
        assert_eq!((removed.days, removed.readings), (1, 0));
        assert_eq!(retained.readings_from, Some(midnight(1)));
        assert_eq!(partitions(db, "events").await, 2);
        assert_eq!(db.int("SELECT count(*) AS v FROM events").await, 25);
    } else {
        // One by one: every classified reading of both days; the waiting one stays.
        assert_eq!((removed.days, removed.readings), (0, 24));
        assert_eq!(retained.readings_from, Some(midnight(2)));
        assert_eq!(db.int("SELECT count(*) AS v FROM events").await, 13);
    }
    assert!(store.get(first).await.unwrap().is_none());
    assert_eq!(
        store.get(waiting).await.unwrap().unwrap().status,
        Status::Pending
    );
    let readings_from = retained.readings_from.unwrap();

    // The first day's series: from the rollups on PostgreSQL, saying so; nothing can sum it
    // in 1-minute buckets, nor on SQLite.
    let hourly = two_hours(store, BucketSize::Hour, day(0)).await;
    let minutes = two_hours(store, BucketSize::Minute, day(0)).await;
    if db.is_postgres() {
        let (buckets, retention) = readings_per_bucket(hourly);
        assert_eq!(buckets, kept);
        assert_eq!(
            retention,
            Some(SeriesRetention {
                readings_from,
                rollups_from: None
            })
        );
    } else {
        assert!(
            matches!(hourly, SeriesOutcome::BeforeRetention(t) if t == readings_from),
            "{hourly:?}"
        );
    }
    assert!(
        matches!(minutes, SeriesOutcome::BeforeRetention(t) if t == readings_from),
        "{minutes:?}"
    );
    // A window of readings kept says nothing of retention.
    let (_, none) = readings_per_bucket(two_hours(store, BucketSize::Hour, day(2)).await);
    assert_eq!(none, None);

    if db.is_postgres() {
        // Once the waiting reading is classified its day goes too; the first day's rollups
        // expire a day later than its readings did.
        assert_eq!(classify_due(store, |_| verdict(Label::Heavy)).await, 1);
        let removed = store
            .remove_expired(Some(midnight(2)), Some(midnight(1)))
            .await
            .unwrap();
        assert_eq!(removed.days, 1);
        assert!(removed.rollups > 0, "{removed:?}");
        assert_eq!(
            store.retained().await.unwrap(),
            Retained {
                readings_from: Some(midnight(2)),
                rollups_from: Some(midnight(1)),
            }
        );
        let (gone, retention) =
            readings_per_bucket(two_hours(store, BucketSize::Hour, day(0)).await);
        assert_eq!(gone, vec![0, 0]);
        assert_eq!(retention.unwrap().rollups_from, Some(midnight(1)));
        let (second, _) = readings_per_bucket(two_hours(store, BucketSize::Hour, day(1)).await);
        assert_eq!(second, vec![6, 6]);
        // Nothing is left to remove.
        let again = store
            .remove_expired(Some(midnight(2)), Some(midnight(1)))
            .await
            .unwrap();
        assert_eq!((again.days, again.rollups), (0, 0));
    }
}

/// An unpartitioned database with events in every status, over two days, comes through the
/// upgrade with each event as it was, numbered on after the last, and its queue still works.
pub async fn an_upgrade_to_day_partitions_keeps_every_event_in_its_status(db: &TestDb) {
    let store = db.store();
    store.migrate_before("20261204000001").await.unwrap();
    let day = TimeDelta::days(1);
    let text = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
    let future = text(Utc::now() + TimeDelta::hours(1));
    // Ids 1 to 5, the last two on the next day.
    for (n, when) in [
        minute(1),
        minute(2),
        minute(3),
        minute(4) + day,
        minute(5) + day,
    ]
    .into_iter()
    .enumerate()
    {
        db.execute_raw(&format!(
            "INSERT INTO events (sensor_id, observed_at, interval_s, lane, vehicle_count, \
             received_at) VALUES ('up', '{at}', 60, {lane}, 3, '{at}')",
            at = text(when),
            lane = n + 1
        ))
        .await
        .unwrap();
    }
    let classification = |id: i64, when: DateTime<Utc>| {
        format!(
            "INSERT INTO classifications VALUES ({id}, '{}', 'heavy', 'D', 1500.5, 22.5, 0.75, \
             '[\"gap\"]', '[\"density 22.5\"]', 'old/1', '{}', 2)",
            text(when),
            text(minute(100))
        )
    };
    for sql in [
        // 1 classified
        classification(1, minute(1)),
        "DELETE FROM queue WHERE event_id = 1".to_owned(),
        // 2 processing, leased to a worker of the old release
        format!(
            "UPDATE queue SET lease_owner = 'old', lease_until = '{future}', \
             next_attempt_at = '{future}', attempts = 1 WHERE event_id = 2"
        ),
        // 3 failed for good
        "UPDATE queue SET failed = TRUE, attempts = 5, last_error = 'rejected' \
         WHERE event_id = 3"
            .to_owned(),
        // 4 classified, then queued again by hand; 5 pending
        classification(4, minute(4) + day),
        "UPDATE queue SET requeued = TRUE WHERE event_id = 4".to_owned(),
    ] {
        db.execute_raw(&sql).await.unwrap();
    }
    let applied = store.migrate().await.unwrap();
    assert!(
        applied.contains(&"20261204000001".to_owned()),
        "{applied:?}"
    );

    let status = |id| async move {
        let event = store.get(id).await.unwrap().unwrap();
        (event.status, event.classification.map(|c| c.label))
    };
    assert_eq!(status(1).await, (Status::Classified, Some(Label::Heavy)));
    assert_eq!(status(2).await, (Status::Processing, None));
    assert_eq!(status(3).await, (Status::Failed, None));
    assert_eq!(status(4).await, (Status::Pending, Some(Label::Heavy)));
    assert_eq!(status(5).await, (Status::Pending, None));
    if db.is_postgres() {
        assert_eq!(partitions(db, "events").await, 2);
        assert_eq!(partitions(db, "classifications").await, 2);
    }
    // The due ones are claimed with their readings, and recorded.
    assert_eq!(classify_due(store, |_| verdict(Label::Congested)).await, 2);
    assert_eq!(
        status(4).await,
        (Status::Classified, Some(Label::Congested))
    );
    assert_eq!(
        status(5).await,
        (Status::Classified, Some(Label::Congested))
    );
    // New readings are numbered after the old ones.
    let fresh = store
        .insert(reading_at("up", Some(9), minute(9)))
        .await
        .unwrap();
    assert_eq!(fresh.event.id, 6);
}

//! The store suite: each case runs unchanged against SQLite and PostgreSQL (see main.rs).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use serde_json::json;
use strum::VariantArray;
use traffic_model::classification::{Classification, Flag, Label, LevelOfService};
use traffic_model::reading::{Reading, SensorId};
use traffic_model::series::{Bucket, BucketSize, Plan, zone_or_utc};
use traffic_store::{EventFilter, Inserted, Retry, Status, Store};

pub use crate::retention::*;
use crate::support::{TestDb, minute, reading, reading_with};

const LEASE: Duration = Duration::from_secs(30);

pub(crate) fn verdict(label: Label) -> Classification {
    Classification {
        label,
        level_of_service: Some(LevelOfService::C),
        flow_veh_h_lane: 720.0,
        density_veh_km_lane: Some(8.228571428571428),
        confidence: 0.9,
        flags: vec![Flag::Gap, Flag::HighOccupancy],
        reasons: vec!["density 8.2 veh/km/ln is within LOS C (≤ 16.2)".into()],
        classifier_version: "test/1".into(),
    }
}

/// Claims the three oldest due events: the first ends classified `heavy`, the second failed
/// for good, the third stays processing. Returns them in claim order.
async fn one_in_each_queue_status(store: &Store) -> Vec<traffic_store::Event> {
    let claimed = store.claim("w", 3, LEASE).await.unwrap();
    store
        .complete_many("w", vec![(claimed[0].id, verdict(Label::Heavy))])
        .await
        .unwrap();
    store
        .fail(claimed[1].id, "w", "boom", Retry::Never)
        .await
        .unwrap();
    claimed
}

/// `owner` records `label` for event `id`: the ids the store recorded it for (`[id]` under a
/// live lease of `owner`, none otherwise).
async fn complete_one(store: &Store, owner: &str, id: i64, label: Label) -> Vec<i64> {
    store
        .complete_many(owner, vec![(id, verdict(label))])
        .await
        .unwrap()
}

/// The (pending, processing, classified, failed) counts of the queue.
async fn counts(store: &Store) -> (u64, u64, u64, u64) {
    let c = store.counts_by_status().await.unwrap();
    (c.pending, c.processing, c.classified, c.failed)
}

/// The ids of the first page of up to 100 events that `filter` lists.
async fn listed(store: &Store, filter: EventFilter) -> Vec<i64> {
    let page = store.list(filter, 100, None).await.unwrap();
    page.items.iter().map(|e| e.id).collect()
}

/// An event's place in the queue: its status, attempts and last error.
fn queued(e: &traffic_store::Event) -> (Status, u32, Option<String>) {
    let p = &e.processing;
    (e.status, p.attempts, p.last_error.clone())
}

fn sensor(id: &str) -> SensorId {
    SensorId::parse(id).expect("sensor id")
}

/// Inserts every reading at once through `Store::insert`, so that the store groups them into
/// multi-row statements; the results come back in input order.
async fn insert_together(store: &Store, readings: &[Reading]) -> Vec<Inserted> {
    let inserts = readings.iter().map(|r| store.insert(r.clone()));
    futures::future::try_join_all(inserts).await.unwrap()
}

pub async fn insert_stores_a_pending_event_with_every_field(db: &TestDb) {
    let r = reading_with(
        "loop/A1:n.3",
        Some(2),
        0,
        json!({"interval_s": 30, "speed_limit_kmh": 100, "lanes": 3}),
    );
    let before = Utc::now();
    let inserted = db.store().insert(r.clone()).await.unwrap();
    assert!(!inserted.duplicate);
    let e = inserted.event;
    assert!(e.id > 0);
    assert_eq!(e.reading, r);
    assert_eq!(e.status, Status::Pending);
    assert_eq!(e.classification, None);
    assert_eq!(e.processing.attempts, 0);
    assert!(e.received_at >= before - TimeDelta::seconds(1));
    assert_eq!(db.store().get(e.id).await.unwrap(), Some(e));
}

pub async fn a_resent_reading_returns_the_first_row_as_a_duplicate(db: &TestDb) {
    for lane in [Some(1), None] {
        let first = db.store().insert(reading("s1", lane, 5)).await.unwrap();
        let again = db.store().insert(reading("s1", lane, 5)).await.unwrap();
        assert!(!first.duplicate);
        assert!(again.duplicate, "lane {lane:?}");
        assert_eq!(again.event.id, first.event.id);
    }
    // Another lane or another minute is another reading.
    let other_lane = db.store().insert(reading("s1", Some(2), 5)).await.unwrap();
    let other_time = db.store().insert(reading("s1", None, 6)).await.unwrap();
    assert!(!other_lane.duplicate && !other_time.duplicate);
    assert_eq!(db.store().counts_by_status().await.unwrap().pending, 4);
}

/// Texts at the edges of what the parser accepts, each with a neighbour that names another
/// instant: the store must key each on exactly the instant the parser kept.
const EDGE_TIMES: &[(&str, &str)] = &[
    ("2016-12-31T23:59:59Z", "2017-01-01T00:00:00Z"),
    ("2016-12-31T23:59:59.999999Z", "2017-01-01T00:00:00.000001Z"),
    (
        "2026-03-02T08:00:00.0000009Z",
        "2026-03-02T08:00:00.000001Z",
    ),
    ("2026-03-02T10:00:00+01:00", "2026-03-02T08:59:59.999999Z"),
    ("2026-03-01T08:00:00-23:59", "2026-03-02T07:59:00.000001Z"),
    ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000001Z"),
    ("1999-12-31T23:59:59.5Z", "2000-01-01T00:00:00Z"),
];

fn at(sensor: &str, observed_at: &str) -> traffic_model::reading::Reading {
    traffic_model::reading::Reading::from_json(
        json!({"sensor_id": sensor, "observed_at": observed_at, "vehicle_count": 7}),
        Utc::now(),
    )
    .expect("an accepted reading")
}

pub async fn every_accepted_time_is_stored_under_its_own_key_and_never_shadows_a_neighbour(
    db: &TestDb,
) {
    let store = db.store();
    for (i, (edge, neighbour)) in EDGE_TIMES.iter().enumerate() {
        let (edge, neighbour) = (at("edge", edge), at("edge", neighbour));
        assert_ne!(edge.observed_at(), neighbour.observed_at(), "case {i}");
        let first = store.insert(edge.clone()).await.unwrap();
        assert!(!first.duplicate, "case {i}");
        assert_eq!(first.event.reading, edge, "case {i}");
        let next = store.insert(neighbour.clone()).await.unwrap();
        assert!(
            !next.duplicate,
            "case {i}: the neighbour was taken for a repeat"
        );
        assert_eq!(next.event.reading, neighbour, "case {i}");
        let again = store.insert(edge.clone()).await.unwrap();
        assert!(
            again.duplicate && again.event.id == first.event.id,
            "case {i}"
        );
    }
    // Through grouped inserts and the counted batch as well: each edge and neighbour once,
    // none a duplicate.
    for (sensor, counted) in [("grouped", false), ("counted", true)] {
        let batch: Vec<_> = EDGE_TIMES
            .iter()
            .flat_map(|(e, n)| [at(sensor, e), at(sensor, n)])
            .collect();
        if counted {
            let counts = store.insert_many_counted(batch.clone()).await.unwrap();
            assert_eq!((counts.inserted, counts.duplicates), (batch.len(), 0));
        } else {
            let stored = insert_together(store, &batch).await;
            assert!(stored.iter().all(|s| !s.duplicate));
            let kept: Vec<_> = stored.into_iter().map(|s| s.event.reading).collect();
            assert_eq!(kept, batch);
        }
        let again = store.insert_many_counted(batch.clone()).await.unwrap();
        assert_eq!(
            (again.inserted, again.duplicates),
            (0, batch.len()),
            "{sensor}"
        );
    }
}

pub async fn grouped_inserts_report_fresh_and_duplicate_readings_to_each_caller(db: &TestDb) {
    let pre = db
        .store()
        .insert(reading("pre", Some(0), 1))
        .await
        .unwrap()
        .event;
    // More readings than one statement takes, a reading stored before, and two readings sent
    // twice while the first copy may still be in flight.
    let mut batch: Vec<_> = (0..2_500)
        .map(|i| reading("bulk", Some((i % 4) as u8), i))
        .collect();
    batch.insert(1_200, reading("pre", Some(0), 1));
    batch.push(reading("bulk", Some(3), 2_499)); // repeats the last of the 2 500
    batch.push(reading("bulk", Some(1), 1));
    let results = insert_together(db.store(), &batch).await;
    assert_eq!(results.len(), batch.len());
    for (input, result) in batch.iter().zip(&results) {
        assert_eq!(&result.event.reading, input);
    }
    assert!(results[1_200].duplicate);
    assert_eq!(results[1_200].event, pre, "the row stored before");
    // Copies in different statements may land in either order: one of each pair is fresh.
    for (first, repeat) in [(2_500, 2_501), (1, 2_502)] {
        let pair = (&results[first], &results[repeat]);
        assert_eq!(pair.0.event.id, pair.1.event.id);
        assert!(pair.0.duplicate != pair.1.duplicate, "{first} and {repeat}");
    }
    assert_eq!(results.iter().filter(|r| r.duplicate).count(), 3);
    let ids: HashSet<i64> = results.iter().map(|r| r.event.id).collect();
    assert_eq!(ids.len(), 2_500 + 1);
    assert_eq!(db.store().counts_by_status().await.unwrap().pending, 2_501);
}

pub async fn a_counted_batch_stores_every_field_and_counts_repeats_as_duplicates(db: &TestDb) {
    let store = db.store();
    store.insert(reading("pre", None, 1)).await.unwrap();
    // More than one SQLite chunk, optional fields both set and missing, a reading stored
    // before, and a repeat inside the batch.
    let mut batch: Vec<_> = (0..2_100)
        .map(|i| match i % 3 {
            0 => reading("bulk", None, i),
            1 => reading("bulk", Some(2), i),
            _ => reading_with(
                "bulk",
                Some(1),
                i,
                json!({"interval_s": 20, "speed_limit_kmh": 80, "lanes": 2,
                       "avg_speed_kmh": null, "occupancy_pct": null}),
            ),
        })
        .collect();
    batch.push(reading("pre", None, 1));
    batch.push(batch[7].clone());
    let counts = store.insert_many_counted(batch.clone()).await.unwrap();
    assert_eq!((counts.inserted, counts.duplicates), (2_100, 2));

    let mut stored = Vec::new();
    let mut cursor = None;
    loop {
        let filter = EventFilter {
            sensor_id: Some(sensor("bulk")),
            ..EventFilter::default()
        };
        let page = store.list(filter, 1_000, cursor).await.unwrap();
        stored.extend(page.items);
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    let mut readings: Vec<_> = stored.iter().map(|e| e.reading.clone()).collect();
    readings.sort_by_key(|r| r.observed_at());
    assert_eq!(
        readings,
        batch[..2_100],
        "every field as sent, each reading once"
    );
    assert!(stored.iter().all(|e| e.status == Status::Pending));

    let again = store.insert_many_counted(batch).await.unwrap();
    assert_eq!((again.inserted, again.duplicates), (0, 2_102));
    let none = store.insert_many_counted(Vec::new()).await.unwrap();
    assert_eq!((none.inserted, none.duplicates), (0, 0));
}

pub async fn concurrent_inserts_of_one_reading_yield_one_row(db: &TestDb) {
    let other = db.open_store();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = if i % 2 == 0 {
                db.store().clone()
            } else {
                other.clone()
            };
            tokio::spawn(async move {
                if i % 3 == 0 {
                    let counts = store.insert_many_counted(vec![reading("race", None, 0)]);
                    (counts.await.unwrap().inserted, None)
                } else {
                    let inserted = store.insert(reading("race", None, 0)).await.unwrap();
                    (usize::from(!inserted.duplicate), Some(inserted.event.id))
                }
            })
        })
        .collect();
    let mut fresh = 0;
    let mut ids = HashSet::new();
    for task in tasks {
        let (inserted, id) = task.await.unwrap();
        fresh += inserted;
        ids.extend(id);
    }
    assert_eq!(fresh, 1, "exactly one insert creates the row");
    assert_eq!(ids.len(), 1);
    assert_eq!(db.store().counts_by_status().await.unwrap().pending, 1);
}

pub async fn concurrent_single_inserts_share_statements_and_each_gets_its_own_row(db: &TestDb) {
    const READINGS: i64 = 300;
    // Every reading once, and every fifth one a second time, all in flight together.
    let inputs: Vec<_> = (0..READINGS)
        .chain((0..READINGS).step_by(5))
        .map(|m| reading("group", Some((m % 3) as u8), m))
        .collect();
    let tasks: Vec<_> = inputs
        .iter()
        .cloned()
        .map(|r| {
            let store = db.store().clone();
            tokio::spawn(async move { store.insert(r).await })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap().unwrap());
    }
    for (input, result) in inputs.iter().zip(&results) {
        assert_eq!(
            &result.event.reading, input,
            "each caller gets its own reading's row"
        );
    }
    let fresh: Vec<_> = results.iter().filter(|r| !r.duplicate).collect();
    assert_eq!(
        fresh.len(),
        READINGS as usize,
        "one fresh row per distinct reading"
    );
    let ids: HashSet<i64> = results.iter().map(|r| r.event.id).collect();
    assert_eq!(ids.len(), READINGS as usize);
    // Rows written by one statement share its `received_at`: fewer instants than rows shows
    // that concurrent inserts were grouped rather than written one statement each.
    let instants: HashSet<_> = fresh.iter().map(|r| r.event.received_at).collect();
    assert!(
        instants.len() < READINGS as usize / 2,
        "{} statements for {READINGS} concurrent inserts",
        instants.len()
    );
    assert_eq!(
        db.store().counts_by_status().await.unwrap().pending,
        READINGS as u64
    );
}

pub async fn get_of_an_unknown_id_is_none(db: &TestDb) {
    assert_eq!(db.store().get(987_654).await.unwrap(), None);
}

pub async fn list_filters_and_orders_newest_first(db: &TestDb) {
    let store = db.store();
    for m in 0..10 {
        store.insert(reading("a", Some(1), m)).await.unwrap();
        store.insert(reading("b", Some(1), m)).await.unwrap();
    }
    let all = store.list(EventFilter::default(), 100, None).await.unwrap();
    assert_eq!(all.items.len(), 20);
    assert_eq!(all.next_cursor, None);
    let keys: Vec<_> = all
        .items
        .iter()
        .map(|e| (e.reading.observed_at(), e.id))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_by(|x, y| y.cmp(x));
    assert_eq!(keys, sorted, "newest observed_at first, then highest id");

    let window = EventFilter {
        sensor_id: Some(sensor("a")),
        from: Some(minute(3)),
        to: Some(minute(7)),
        ..Default::default()
    };
    let page = store.list(window, 100, None).await.unwrap();
    let minutes: Vec<_> = page.items.iter().map(|e| e.reading.observed_at()).collect();
    assert_eq!(minutes, vec![minute(6), minute(5), minute(4), minute(3)]);
    assert!(
        page.items
            .iter()
            .all(|e| e.reading.sensor_id().as_str() == "a")
    );

    let claimed = one_in_each_queue_status(store).await;
    let by_status = |status| EventFilter {
        status: Some(status),
        ..Default::default()
    };
    let by_label = |label| EventFilter {
        label: Some(label),
        ..Default::default()
    };
    assert_eq!(listed(store, by_status(Status::Processing)).await.len(), 1);
    assert_eq!(
        listed(store, by_status(Status::Failed)).await[0],
        claimed[1].id
    );
    assert_eq!(
        listed(store, by_label(Label::Heavy)).await,
        vec![claimed[0].id]
    );
    assert!(listed(store, by_label(Label::Congested)).await.is_empty());
}

pub async fn a_cursor_walk_sees_every_preexisting_row_once_while_rows_arrive(db: &TestDb) {
    const ROWS: i64 = 10_000;
    let batch: Vec<_> = (0..ROWS)
        .map(|i| reading(&format!("walk-{}", i % 7), None, i % 1_500))
        .collect();
    let stored = insert_together(db.store(), &batch).await;
    let preexisting: HashSet<i64> = stored.iter().map(|r| r.event.id).collect();
    assert_eq!(preexisting.len(), ROWS as usize);

    // A writer keeps adding readings (older, newer and equal times) during the walk.
    let writer_store = db.open_store();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut n = 0_i64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let minutes = [-5, 700, 3_000][(n % 3) as usize] + n / 3;
                writer_store
                    .insert(reading("late", Some(9), minutes))
                    .await
                    .unwrap();
                n += 1;
            }
            n
        })
    };
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = db
            .store()
            .list(EventFilter::default(), 250, cursor)
            .await
            .unwrap();
        seen.extend(page.items.iter().map(|e| e.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = writer.await.unwrap();
    assert!(written > 0, "rows were inserted during the walk");
    let seen_pre: Vec<i64> = seen
        .iter()
        .copied()
        .filter(|id| preexisting.contains(id))
        .collect();
    let unique: HashSet<i64> = seen_pre.iter().copied().collect();
    assert_eq!(seen_pre.len(), unique.len(), "no pre-existing row twice");
    assert_eq!(unique, preexisting, "every pre-existing row once");
    let all_unique: HashSet<i64> = seen.iter().copied().collect();
    assert_eq!(all_unique.len(), seen.len(), "no row twice at all");
}

pub async fn claim_leases_due_events_oldest_first_and_counts_an_attempt(db: &TestDb) {
    let store = db.store();
    let mut ids = Vec::new();
    for m in 0..5 {
        ids.push(store.insert(reading("q", None, m)).await.unwrap().event.id);
    }
    let first = store.claim("w1", 3, LEASE).await.unwrap();
    assert_eq!(first.iter().map(|e| e.id).collect::<Vec<_>>(), ids[..3]);
    assert!(
        first
            .iter()
            .all(|e| e.status == Status::Processing && e.processing.attempts == 1)
    );
    assert!(first.iter().all(|e| {
        e.processing
            .next_attempt_at
            .is_some_and(|due| due > Utc::now() + TimeDelta::seconds(20))
    }));
    let rest = store.claim("w2", 10, LEASE).await.unwrap();
    assert_eq!(rest.iter().map(|e| e.id).collect::<Vec<_>>(), ids[3..]);
    assert!(
        store.claim("w3", 10, LEASE).await.unwrap().is_empty(),
        "nothing left that is due"
    );
    let counts = store.counts_by_status().await.unwrap();
    assert_eq!((counts.pending, counts.processing), (0, 5));
}

pub async fn two_pools_claiming_concurrently_never_get_the_same_event(db: &TestDb) {
    const EVENTS: usize = 600;
    db.store()
        .insert_many_counted((0..EVENTS as i64).map(|m| reading("c", None, m)).collect())
        .await
        .unwrap();
    let pools = [db.store().clone(), db.open_store()];
    let claimers: Vec<_> = (0..6)
        .map(|w| {
            let store = pools[w % 2].clone();
            tokio::spawn(async move {
                let owner = format!("worker-{w}");
                let mut mine = Vec::new();
                loop {
                    let batch = store.claim(&owner, 7, LEASE).await.unwrap();
                    if batch.is_empty() {
                        break;
                    }
                    mine.extend(batch.iter().map(|e| e.id));
                }
                mine
            })
        })
        .collect();
    let mut all = Vec::new();
    for claimer in claimers {
        all.extend(claimer.await.unwrap());
    }
    let unique: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), unique.len(), "an event was claimed twice");
    assert_eq!(unique.len(), EVENTS, "every event was claimed");
}

pub async fn complete_records_the_classification_only_under_a_live_lease(db: &TestDb) {
    let store = db.store();
    let id = store
        .insert(reading("l", Some(1), 0))
        .await
        .unwrap()
        .event
        .id;
    let claimed = store
        .claim("owner-a", 1, Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(claimed[0].id, id);
    assert!(
        complete_one(store, "owner-b", id, Label::Moderate)
            .await
            .is_empty(),
        "not b's lease"
    );
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(
        complete_one(store, "owner-a", id, Label::Moderate)
            .await
            .is_empty(),
        "a completion after the lease expired is refused"
    );
    // The expired lease made the event due again; a new holder takes over.
    let retaken = store.claim("owner-b", 5, LEASE).await.unwrap();
    assert_eq!(
        retaken
            .iter()
            .map(|e| (e.id, e.processing.attempts))
            .collect::<Vec<_>>(),
        vec![(id, 2)]
    );
    assert!(
        complete_one(store, "owner-a", id, Label::Congested)
            .await
            .is_empty()
    );
    let done = complete_one(store, "owner-b", id, Label::Moderate).await;
    assert_eq!(done, vec![id], "b holds the lease now");
    let event = store.get(id).await.unwrap().unwrap();
    assert_eq!(event.status, Status::Classified);
    assert_eq!(event.classification, Some(verdict(Label::Moderate)));
    assert!(event.classified_at.is_some());
    assert!(
        complete_one(store, "owner-b", id, Label::Heavy)
            .await
            .is_empty(),
        "lease ended"
    );
}

pub async fn a_multi_row_completion_records_only_the_events_still_leased_to_its_owner(db: &TestDb) {
    let store = db.store();
    for minute in 0..5 {
        store.insert(reading("m", Some(1), minute)).await.unwrap();
    }
    let mine = store.claim("owner-a", 3, LEASE).await.unwrap();
    let theirs = store.claim("owner-b", 2, LEASE).await.unwrap();
    assert_eq!((mine.len(), theirs.len()), (3, 2));
    let results = mine
        .iter()
        .chain(&theirs)
        .map(|e| (e.id, verdict(Label::Heavy)))
        .collect();
    let mut done = store.complete_many("owner-a", results).await.unwrap();
    done.sort_unstable();
    assert_eq!(done, mine.iter().map(|e| e.id).collect::<Vec<_>>());
    for event in &theirs {
        let stored = store.get(event.id).await.unwrap().unwrap();
        assert_eq!(stored.status, Status::Processing, "b's lease is untouched");
        assert_eq!(stored.classification, None);
    }
    for event in &mine {
        let stored = store.get(event.id).await.unwrap().unwrap();
        assert_eq!(stored.classification, Some(verdict(Label::Heavy)));
    }
}

pub async fn failures_back_off_or_end_failed_and_release_refunds_the_attempt(db: &TestDb) {
    let store = db.store();
    let id = store.insert(reading("f", None, 0)).await.unwrap().event.id;
    store.claim("w", 1, LEASE).await.unwrap();
    // `w` fails the event with `error`; the event's place in the queue afterwards.
    let fail = |error: &'static str, retry: Retry| async move {
        assert!(store.fail(id, "w", error, retry).await.unwrap(), "{error}");
        queued(&store.get(id).await.unwrap().unwrap())
    };
    let later = Utc::now() + TimeDelta::milliseconds(400);
    let error = "classifier timed out";
    let expected = (Status::Pending, 1, Some(error.to_owned()));
    assert_eq!(fail(error, Retry::At(later)).await, expected);
    assert!(
        store.claim("w", 1, LEASE).await.unwrap().is_empty(),
        "not due before the backoff"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        store.claim("w", 1, LEASE).await.unwrap()[0]
            .processing
            .attempts,
        2
    );

    assert!(store.release(id, "w").await.unwrap());
    let e = store.get(id).await.unwrap().unwrap();
    assert_eq!(
        (e.status, e.processing.attempts),
        (Status::Pending, 1),
        "release refunds the attempt"
    );
    assert!(
        !store.release(id, "w").await.unwrap(),
        "nothing left to release"
    );

    store.claim("w", 1, LEASE).await.unwrap();
    assert!(!store.fail(id, "intruder", "x", Retry::Never).await.unwrap());
    let error = "reading rejected: vehicle_count";
    let expected = (Status::Failed, 2, Some(error.to_owned()));
    assert_eq!(fail(error, Retry::Never).await, expected);
    assert!(
        store.claim("w", 1, LEASE).await.unwrap().is_empty(),
        "failed events are not due"
    );
}

pub async fn requeue_makes_any_event_due_again_with_a_fresh_budget(db: &TestDb) {
    let store = db.store();
    let id = store.insert(reading("r", None, 0)).await.unwrap().event.id;
    store.claim("w", 1, LEASE).await.unwrap();
    complete_one(store, "w", id, Label::FreeFlow).await;
    let requeued = store.requeue(id).await.unwrap().unwrap();
    assert_eq!(
        (requeued.status, requeued.processing.attempts),
        (Status::Pending, 0)
    );
    assert_eq!(
        requeued.classification,
        Some(verdict(Label::FreeFlow)),
        "kept until replaced"
    );
    // Requeueing revokes a lease in flight: its holder's result is refused.
    store.claim("old", 1, LEASE).await.unwrap();
    store.requeue(id).await.unwrap();
    assert!(
        complete_one(store, "old", id, Label::Heavy)
            .await
            .is_empty()
    );
    assert_eq!(store.claim("new", 1, LEASE).await.unwrap()[0].id, id);
    assert_eq!(store.requeue(123_456_789).await.unwrap(), None);
}

pub async fn history_is_the_last_readings_of_one_sensor_lane_oldest_first(db: &TestDb) {
    let store = db.store();
    let mut batch = Vec::new();
    for m in 0..20 {
        batch.push(reading("h", Some(1), m));
        batch.push(reading("h", Some(2), m));
        batch.push(reading("h", None, m));
        batch.push(reading("other", Some(1), m));
    }
    store.insert_many_counted(batch).await.unwrap();
    let h = store
        .history(sensor("h"), Some(1), minute(10), 4)
        .await
        .unwrap();
    assert_eq!(
        h.iter().map(|r| r.observed_at()).collect::<Vec<_>>(),
        vec![minute(6), minute(7), minute(8), minute(9)]
    );
    assert!(
        h.iter()
            .all(|r| r.sensor_id().as_str() == "h" && r.lane() == Some(1))
    );
    let laneless = store
        .history(sensor("h"), None, minute(3), 10)
        .await
        .unwrap();
    assert_eq!(laneless.len(), 3);
    assert!(laneless.iter().all(|r| r.lane().is_none()));
    assert!(
        store
            .history(sensor("h"), Some(1), minute(0), 5)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn counts_by_status_counts_every_status(db: &TestDb) {
    let store = db.store();
    store
        .insert_many_counted((0..6).map(|m| reading("n", None, m)).collect())
        .await
        .unwrap();
    one_in_each_queue_status(store).await;
    assert_eq!(counts(store).await, (3, 1, 1, 1));
    let counts = store.counts_by_status().await.unwrap();
    assert_eq!(counts.get(Status::Pending), 3);
}

pub async fn cancelled_calls_finish_their_writes_and_leave_the_pool_healthy(db: &TestDb) {
    let store = db.store();
    // Callers that give up at once, mid-write and mid-read, many times over.
    for i in 0..200 {
        let write = store.insert(reading("cancel", None, i));
        let _ = tokio::time::timeout(Duration::from_micros(1), write).await;
        let read = store.list(EventFilter::default(), 50, None);
        let _ = tokio::time::timeout(Duration::from_micros(1), read).await;
    }
    // Abandoned writes still complete, entirely.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let pending = store.counts_by_status().await.unwrap().pending;
        if pending == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {pending} of 200 abandoned writes landed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And every pooled connection still works: more concurrent calls than the pool holds.
    let calls: Vec<_> = (0..64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store.insert(reading("after", None, i)).await?;
                store.list(EventFilter::default(), 10, None).await
            })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap().items.len(), 10);
    }
    let page = store.list(
        EventFilter {
            sensor_id: Some(sensor("cancel")),
            ..Default::default()
        },
        1_000,
        None,
    );
    let page = page.await.unwrap();
    assert_eq!(page.items.len(), 200);
    assert!(page.items.iter().all(|e| e.reading.vehicle_count() == 12));
}

/// Writes that bypass the application still cannot store a sensor id its rules reject.
pub async fn the_database_refuses_sensor_ids_the_rules_reject(db: &TestDb) {
    let longest = "A".repeat(128);
    let too_long = "A".repeat(129);
    let cases = [
        ("loop-7.N:2/a_B", true),
        (longest.as_str(), true),
        (too_long.as_str(), false),
        ("", false),
        ("two words", false),
        ("café", false),
        ("line\nbreak", false),
        ("semi;colon", false),
    ];
    // A raw write finds no partition of its day unless one was made (PostgreSQL).
    let times = (0..cases.len() as i64).map(minute).collect();
    db.store().create_partitions(times).await.unwrap();
    for (n, (sensor_id, allowed)) in cases.into_iter().enumerate() {
        let at = minute(n as i64).to_rfc3339();
        let sql = format!(
            "INSERT INTO events (sensor_id, observed_at, interval_s, vehicle_count, received_at) \
             VALUES ('{sensor_id}', '{at}', 60, 1, '{at}')"
        );
        let written = db.execute_raw(&sql).await;
        assert_eq!(written.is_ok(), allowed, "{sensor_id:?}: {written:?}");
        if let Err(e) = written {
            assert!(e.contains("sensor_id"), "{sensor_id:?} refused for: {e}");
        }
    }
    let stored = db.store().counts_by_status().await.unwrap();
    assert_eq!(stored.pending, 2, "{stored:?}");
}

pub async fn migrations_are_idempotent_and_safe_to_run_concurrently(db: &TestDb) {
    // The fixture migrated once; several "processes" starting together find nothing to do.
    let stores: Vec<Store> = (0..4).map(|_| db.open_store()).collect();
    let runs: Vec<_> = stores
        .iter()
        .map(|s| {
            let s = s.clone();
            tokio::spawn(async move { s.migrate().await })
        })
        .collect();
    for run in runs {
        assert!(run.await.unwrap().unwrap().is_empty());
    }
    assert!(db.store().is_migrated().await.unwrap());
    db.store().ping().await.unwrap();
}

/// Runs on an empty database: processes starting together apply each migration exactly once.
pub async fn concurrent_first_starts_migrate_an_empty_database_once(db: &TestDb) {
    assert!(!db.store().is_migrated().await.unwrap());
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let s = db.open_store();
            tokio::spawn(async move { s.migrate().await })
        })
        .collect();
    let mut applied = Vec::new();
    for run in runs {
        applied.push(run.await.unwrap().unwrap().len());
    }
    applied.sort();
    assert_eq!(
        applied[..3],
        [0, 0, 0],
        "one process applies them: {applied:?}"
    );
    assert!(applied[3] >= 1, "{applied:?}");
    assert!(db.store().is_migrated().await.unwrap());
    db.store().insert(reading("m", None, 0)).await.unwrap();
}

pub async fn recent_history_takes_the_last_readings_of_each_lane_within_the_window(db: &TestDb) {
    use traffic_store::LaneHistory;
    let store = db.store();
    let mut batch = Vec::new();
    for m in 0..20 {
        batch.push(reading("s", Some(1), m));
        batch.push(reading("s", None, m));
        batch.push(reading("t", Some(2), m));
        batch.push(reading("t", Some(3), m));
    }
    store.insert_many_counted(batch).await.unwrap();
    let lane = |sensor_id: &str, lane, minutes| LaneHistory {
        sensor_id: sensor(sensor_id),
        lane,
        before: minute(minutes),
    };
    let hour = Duration::from_secs(3600);
    let history = store
        .recent_history(
            vec![
                lane("s", Some(1), 10),
                lane("s", None, 5),
                lane("t", Some(2), 3),
            ],
            4,
            hour,
        )
        .await
        .unwrap();
    let mut got: Vec<(String, Option<u8>, i64)> = history
        .iter()
        .map(|r| {
            (
                r.sensor_id().to_string(),
                r.lane(),
                (r.observed_at() - minute(0)).num_minutes(),
            )
        })
        .collect();
    got.sort();
    let mut expected: Vec<(String, Option<u8>, i64)> = Vec::new();
    expected.extend((6..10).map(|m| ("s".to_owned(), Some(1), m)));
    expected.extend((1..5).map(|m| ("s".to_owned(), None, m)));
    expected.extend((0..3).map(|m| ("t".to_owned(), Some(2), m)));
    expected.sort();
    assert_eq!(got, expected);
    let narrow = store
        .recent_history(vec![lane("s", Some(1), 10)], 10, Duration::from_secs(150))
        .await
        .unwrap();
    let minutes: Vec<i64> = narrow
        .iter()
        .map(|r| (r.observed_at() - minute(0)).num_minutes())
        .collect();
    assert_eq!(minutes.len(), 2, "only the window's readings: {minutes:?}");
    assert!(
        store
            .recent_history(Vec::new(), 4, hour)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn label_counts_cover_one_sensor_over_a_half_open_window(db: &TestDb) {
    let store = db.store();
    for m in 0..6 {
        store.insert(reading("counted", None, m)).await.unwrap();
    }
    store.insert(reading("other", None, 2)).await.unwrap();
    let claimed = store.claim("w", 100, LEASE).await.unwrap();
    let results = claimed
        .iter()
        .filter(|e| e.reading.sensor_id().as_str() == "counted")
        .filter(|e| e.reading.observed_at() < minute(3))
        .map(|e| {
            let label = if e.reading.observed_at() == minute(0) {
                Label::Heavy
            } else {
                Label::FreeFlow
            };
            (e.id, verdict(label))
        })
        .collect();
    store.complete_many("w", results).await.unwrap();

    // [minute 1, minute 5): minutes 1 and 2 free flow, 3 and 4 not classified yet.
    let counts = store
        .label_counts(sensor("counted"), minute(1), minute(5))
        .await
        .unwrap();
    assert_eq!(
        counts.counts_by_label.into_iter().collect::<Vec<_>>(),
        [(Label::FreeFlow, 2)]
    );
    assert_eq!(counts.unclassified, 2);

    let all = store
        .label_counts(sensor("counted"), minute(0), minute(6))
        .await
        .unwrap();
    assert_eq!(all.counts_by_label.get(&Label::Heavy), Some(&1));
    assert_eq!(all.counts_by_label.get(&Label::FreeFlow), Some(&2));
    assert_eq!(all.unclassified, 3);

    let none = store
        .label_counts(sensor("absent"), minute(0), minute(6))
        .await
        .unwrap();
    assert_eq!(none, traffic_store::LabelCounts::default());
}

/// A database that the release before the queue table left, holding events in every status,
/// upgraded: each event keeps its status, classification, attempts, error and re-queue mark,
/// the due ones are claimed, and new readings are queued and numbered after the old ones.
pub async fn an_upgrade_keeps_every_event_in_its_status(db: &TestDb) {
    let store = db.store();
    store.migrate_before("20261202000001").await.unwrap();
    let at = |m: i64| minute(m).to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
    let future =
        (Utc::now() + TimeDelta::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
    let result = "label, level_of_service, flow_veh_h_lane, density_veh_km_lane, confidence, \
                  flags, reasons, classifier_version, classified_at";
    let verdict = format!(
        "'heavy', 'D', 1500.5, 22.5, 0.75, '[\"high_occupancy\"]', '[\"density 22.5\"]', 'old/1', '{}'",
        at(100)
    );
    // A row of sensor `up`, lane 1, observed and received at minute `m`, in `status` after
    // `attempts` and due at `due`, with `columns` set to `values` besides.
    let row = |m: i64, status: &str, attempts: u32, due: &str, columns: &str, values: &str| {
        format!(
            "INSERT INTO events (sensor_id, observed_at, interval_s, lane, vehicle_count, \
             received_at, status, attempts, next_attempt_at, {columns}) VALUES ('up', '{at}', \
             60, 1, 3, '{at}', '{status}', {attempts}, '{due}', {values})",
            at = at(m)
        )
    };
    let rows = [
        // pending, one transient failure behind it
        row(1, "pending", 1, &at(1), "last_error", "'timed out'"),
        // processing, leased to a worker of the old release
        row(
            2,
            "processing",
            1,
            &future,
            "lease_owner, lease_until",
            &format!("'old-worker', '{future}'"),
        ),
        // classified
        row(3, "classified", 2, &at(3), result, &verdict),
        // failed for good
        row(4, "failed", 5, &at(4), "last_error", "'rejected'"),
        // classified, then queued again by hand
        row(
            5,
            "pending",
            0,
            &at(5),
            &format!("requeued, {result}"),
            &format!("TRUE, {verdict}"),
        ),
    ];
    // In this order, on a fresh database: ids 1 to 5.
    for sql in &rows {
        db.execute_raw(sql).await.unwrap();
    }
    let applied = store.migrate().await.unwrap();
    assert!(
        applied.contains(&"20261202000001".to_owned()),
        "{applied:?}"
    );

    let event = |id| async move { store.get(id).await.unwrap().unwrap() };
    let pending = event(1).await;
    assert_eq!(
        queued(&pending),
        (Status::Pending, 1, Some("timed out".to_owned()))
    );
    assert_eq!(pending.processing.next_attempt_at, Some(minute(1)));
    assert!(pending.classification.is_none());
    assert_eq!(event(2).await.status, Status::Processing);
    let classified = event(3).await;
    assert_eq!(
        (classified.status, classified.processing.attempts),
        (Status::Classified, 2)
    );
    assert_eq!(classified.processing.next_attempt_at, None);
    assert_eq!(classified.classified_at, Some(minute(100)));
    let c = classified.classification.unwrap();
    assert_eq!(
        (
            c.label,
            c.level_of_service,
            c.flow_veh_h_lane,
            c.density_veh_km_lane
        ),
        (Label::Heavy, Some(LevelOfService::D), 1500.5, Some(22.5))
    );
    assert_eq!(
        (c.confidence, c.flags, c.classifier_version.as_str()),
        (0.75, vec![Flag::HighOccupancy], "old/1")
    );
    assert_eq!(c.reasons, vec!["density 22.5".to_owned()]);
    assert_eq!(
        queued(&event(4).await),
        (Status::Failed, 5, Some("rejected".to_owned()))
    );
    let requeued = event(5).await;
    assert_eq!(
        (requeued.status, requeued.processing.requeued),
        (Status::Pending, true)
    );
    assert_eq!(requeued.classification.map(|c| c.label), Some(Label::Heavy));

    assert_eq!(counts(store).await, (2, 1, 1, 1));
    let claimed: Vec<i64> = store
        .claim("new-worker", 10, LEASE)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(
        claimed,
        [1, 5],
        "the due events, not the leased or failed ones"
    );
    let fresh = store
        .insert(crate::support::reading("up", Some(3), 6))
        .await
        .unwrap();
    assert!(fresh.event.id > 5, "{}", fresh.event.id);
    assert_eq!(
        store.get(fresh.event.id).await.unwrap().unwrap().status,
        Status::Pending
    );
}

/// Completed readings leave dead queue rows behind; PostgreSQL's queue is vacuumed once enough
/// have died (SQLite reuses the space itself and never needs it).
pub async fn the_queue_is_vacuumed_once_enough_rows_died(db: &TestDb) {
    let store = db.store();
    let readings: Vec<Reading> = (0..50).map(|m| reading("vac", Some(1), m)).collect();
    store.insert_many_counted(readings).await.unwrap();
    let claimed = store.claim("w", 50, LEASE).await.unwrap();
    let results = claimed
        .iter()
        .map(|e| (e.id, verdict(Label::FreeFlow)))
        .collect();
    assert_eq!(store.complete_many("w", results).await.unwrap().len(), 50);

    let vacuums = "SELECT coalesce(vacuum_count, 0) AS v FROM pg_stat_user_tables \
                   WHERE relid = 'queue'::regclass";
    let before = if db.is_postgres() {
        db.int(vacuums).await
    } else {
        0
    };
    assert!(
        !store.vacuum_queue(i64::MAX).await.unwrap(),
        "too few dead rows"
    );
    assert_eq!(store.vacuum_queue(0).await.unwrap(), db.is_postgres());
    if db.is_postgres() {
        assert_eq!(db.int(vacuums).await, before + 1);
    }
    assert_eq!(store.counts_by_status().await.unwrap().classified, 50);
}

/// A listing by label pages newest first within its window, ties broken by id, every matching
/// event once (it walks the classifications' label index: its own copy of time and id).
pub async fn a_walk_by_label_pages_newest_first_within_its_window(db: &TestDb) {
    let store = db.store();
    let readings: Vec<Reading> = (0..8)
        .flat_map(|m| [reading("la", Some(1), m), reading("lb", Some(1), m)])
        .collect();
    store.insert_many_counted(readings).await.unwrap();
    let claimed = store.claim("w", 100, LEASE).await.unwrap();
    let label_of = |i: usize| {
        if i.is_multiple_of(3) {
            Label::FreeFlow
        } else {
            Label::Heavy
        }
    };
    let results = claimed
        .iter()
        .enumerate()
        .map(|(i, e)| (e.id, verdict(label_of(i))))
        .collect();
    store.complete_many("w", results).await.unwrap();
    let mut expected: Vec<(chrono::DateTime<Utc>, i64)> = claimed
        .iter()
        .enumerate()
        .filter(|(i, e)| {
            let at = e.reading.observed_at();
            label_of(*i) == Label::Heavy && at >= minute(1) && at < minute(6)
        })
        .map(|(_, e)| (e.reading.observed_at(), e.id))
        .collect();
    expected.sort_by(|x, y| y.cmp(x));
    assert!(expected.len() > 4, "{expected:?}");

    let filter = EventFilter {
        label: Some(Label::Heavy),
        from: Some(minute(1)),
        to: Some(minute(6)),
        ..Default::default()
    };
    let mut walked = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.list(filter.clone(), 2, cursor).await.unwrap();
        assert!(page.items.len() <= 2);
        walked.extend(page.items.iter().map(|e| {
            assert_eq!(
                e.classification.as_ref().map(|c| c.label),
                Some(Label::Heavy)
            );
            (e.reading.observed_at(), e.id)
        }));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(walked, expected);
}

pub async fn concurrent_patches_of_one_sensor_each_keep_their_change(db: &TestDb) {
    let store = db.store();
    let patches = [
        json!({"name": "n"}),
        json!({"road": "A1"}),
        json!({"direction": "NB"}),
        json!({"lanes": 3}),
        json!({"speed_limit_kmh": 80}),
        json!({"free_flow_speed_kmh": 95.0}),
        json!({"effective_vehicle_length_m": 6.0}),
        json!({"time_zone": "Europe/Paris"}),
        json!({"location": {"lon": 2.35, "lat": 48.86}}),
    ];
    let writes = patches
        .into_iter()
        .map(|patch| store.patch_sensor(sensor("S-patched"), patch));
    let results = futures::future::try_join_all(writes).await.unwrap();
    assert_eq!(
        results.iter().filter(|(_, created)| *created).count(),
        1,
        "one patch created the row, the others changed it"
    );
    let stored = || async {
        let stored = store.sensor(sensor("S-patched")).await.unwrap();
        stored.expect("stored").metadata
    };
    let m = stored().await;
    assert_eq!(
        (m.name.as_deref(), m.road.as_deref(), m.direction.as_deref()),
        (Some("n"), Some("A1"), Some("NB"))
    );
    assert_eq!((m.lanes, m.speed_limit_kmh), (Some(3), Some(80)));
    assert_eq!(
        (m.free_flow_speed_kmh, m.effective_vehicle_length_m),
        (Some(95.0), Some(6.0))
    );
    assert_eq!(m.time_zone.as_deref(), Some("Europe/Paris"));
    assert!(m.location.is_some(), "no patch was lost");

    let refused = store
        .patch_sensor(sensor("S-patched"), json!({"lanes": 0}))
        .await
        .expect_err("refused");
    assert!(
        matches!(refused, traffic_store::StoreError::InvalidMetadata(_)),
        "{refused}"
    );
    assert_eq!(stored().await.lanes, Some(3), "unchanged");
    assert_eq!(store.sensor(sensor("S-none")).await.unwrap(), None);
}

/// Inserts `reading`, claims it and records `label` for it; its event id.
async fn classified(store: &Store, reading: Reading, label: Label) -> i64 {
    let id = store.insert(reading).await.unwrap().event.id;
    let claimed = store.claim("state", 100, LEASE).await.unwrap();
    let results = claimed.iter().map(|e| (e.id, verdict(label))).collect();
    store.complete_many("state", results).await.unwrap();
    id
}

pub async fn lane_states_hold_each_lane_s_latest_classification_now_and_at_any_moment(db: &TestDb) {
    let store = db.store();
    classified(store, reading("s1", Some(1), 0), Label::FreeFlow).await;
    let heavy = classified(store, reading("s1", Some(1), 1), Label::Heavy).await;
    let congested = classified(store, reading("s1", Some(1), 2), Label::Congested).await;
    let carriageway = classified(store, reading("s1", None, 0), Label::Moderate).await;
    classified(store, reading("s2", Some(1), 5), Label::FreeFlow).await;
    // A late reading, older than every other, classified last: the lane stays at minute 2.
    let late = classified(store, reading("s1", Some(1), -3), Label::Unknown).await;
    // Pending readings are not state.
    store.insert(reading("s1", Some(1), 3)).await.unwrap();
    store.insert(reading("s3", Some(1), 3)).await.unwrap();

    let summary = |states: Vec<traffic_store::LaneState>| -> Vec<(String, Option<u8>, i64, Label)> {
        states
            .into_iter()
            .map(|s| (s.sensor_id.as_str().to_owned(), s.lane, s.event_id, s.label))
            .collect()
    };
    let now = store.lane_states(None, None).await.unwrap();
    assert_eq!(now[1].flags, [Flag::Gap, Flag::HighOccupancy]);
    assert_eq!(now[1].observed_at, minute(2));
    let s2 = now[2].event_id;
    assert_eq!(
        summary(now),
        [
            ("s1".to_owned(), None, carriageway, Label::Moderate),
            ("s1".to_owned(), Some(1), congested, Label::Congested),
            ("s2".to_owned(), Some(1), s2, Label::FreeFlow),
        ]
    );
    // At minute 1 (inclusive): s1's lane was heavy, s2 had no reading yet.
    assert_eq!(
        summary(store.lane_states(Some(minute(1)), None).await.unwrap()),
        [
            ("s1".to_owned(), None, carriageway, Label::Moderate),
            ("s1".to_owned(), Some(1), heavy, Label::Heavy),
        ]
    );
    assert_eq!(
        summary(store.lane_states(Some(minute(-1)), None).await.unwrap()),
        [("s1".to_owned(), Some(1), late, Label::Unknown)]
    );
    assert!(
        store
            .lane_states(Some(minute(-10)), None)
            .await
            .unwrap()
            .is_empty()
    );
    // One sensor's lanes, now and then.
    assert_eq!(
        summary(store.lane_states(None, Some(sensor("s2"))).await.unwrap()),
        [("s2".to_owned(), Some(1), s2, Label::FreeFlow)]
    );
    assert_eq!(
        summary(
            store
                .lane_states(Some(minute(1)), Some(sensor("s1")))
                .await
                .unwrap()
        )
        .len(),
        2
    );
    assert!(
        store
            .lane_states(Some(minute(1)), Some(sensor("s2")))
            .await
            .unwrap()
            .is_empty()
    );

    // Re-classifying the newest reading moves its lane's state too.
    store.requeue(congested).await.unwrap().expect("requeued");
    let claimed = store.claim("state", 10, LEASE).await.unwrap();
    assert_eq!(claimed.len(), 3, "the requeued one and the two pending");
    let requeued = claimed.iter().find(|e| e.id == congested).expect("claimed");
    store
        .complete_many("state", vec![(requeued.id, verdict(Label::Moderate))])
        .await
        .unwrap();
    let now = store.lane_states(None, None).await.unwrap();
    assert_eq!(
        (now[1].event_id, now[1].label),
        (congested, Label::Moderate)
    );
}

pub async fn transitions_are_label_changes_in_lane_order_and_follow_late_readings(db: &TestDb) {
    use traffic_store::{Cursor, TransitionQuery};
    let store = db.store();
    for (sensor, lane, m, label) in [
        ("s1", Some(1), 0, Label::FreeFlow),
        ("s1", Some(1), 1, Label::FreeFlow),
        ("s1", Some(1), 2, Label::Heavy),
        ("s1", Some(1), 4, Label::Congested),
        ("s1", None, 0, Label::Moderate),
        ("s1", None, 3, Label::Heavy),
        ("s2", Some(1), 1, Label::FreeFlow),
        ("s2", Some(1), 5, Label::Congested),
    ] {
        classified(store, reading(sensor, lane, m), label).await;
    }
    store.insert(reading("s1", Some(1), 6)).await.unwrap(); // pending: no label yet
    let query = |from: i64, newest_first: bool, sensors: Option<&[&str]>| TransitionQuery {
        from: minute(from),
        to: minute(10),
        sensors: sensors.map(|ids| ids.iter().map(|id| sensor(id)).collect()),
        newest_first,
        after: None,
        limit: 100,
    };
    type Seen = (String, Option<u8>, i64, Label, Label);
    let seen = |page: traffic_store::TransitionPage| -> Vec<Seen> {
        page.items
            .into_iter()
            .map(|t| {
                let minutes = (t.at - minute(0)).num_minutes();
                assert!(t.previous_observed_at < t.at);
                (
                    t.sensor_id.as_str().to_owned(),
                    t.lane,
                    minutes,
                    t.from_label,
                    t.to_label,
                )
            })
            .collect()
    };
    let s = |id: &str| id.to_owned();
    let all = seen(store.transitions(query(1, false, None)).await.unwrap());
    assert_eq!(
        all,
        [
            (s("s1"), Some(1), 2, Label::FreeFlow, Label::Heavy),
            (s("s1"), None, 3, Label::Moderate, Label::Heavy),
            (s("s1"), Some(1), 4, Label::Heavy, Label::Congested),
            (s("s2"), Some(1), 5, Label::FreeFlow, Label::Congested),
        ]
    );
    // A window's first reading is compared with the lane's reading before the window.
    let later = seen(store.transitions(query(3, false, None)).await.unwrap());
    assert_eq!(later, all[1..]);
    let newest_first = seen(store.transitions(query(1, true, None)).await.unwrap());
    assert_eq!(newest_first, all.iter().rev().cloned().collect::<Vec<_>>());
    assert_eq!(
        seen(
            store
                .transitions(query(1, false, Some(&["s2"])))
                .await
                .unwrap()
        ),
        all[3..]
    );

    // Page by page, one at a time, in both orders.
    for newest_first in [false, true] {
        let mut walked = Vec::new();
        let mut after: Option<Cursor> = None;
        loop {
            let page = store
                .transitions(TransitionQuery {
                    after,
                    limit: 1,
                    ..query(1, newest_first, None)
                })
                .await
                .unwrap();
            after = page.next;
            walked.extend(seen(page));
            if after.is_none() {
                break;
            }
        }
        let expected = seen(
            store
                .transitions(query(1, newest_first, None))
                .await
                .unwrap(),
        );
        assert_eq!(walked, expected);
    }

    // A late reading between minutes 2 and 4 of s1/1, congested: the change moves from
    // minute 4 to minute 3.
    classified(store, reading("s1", Some(1), 3), Label::Congested).await;
    let revised = seen(
        store
            .transitions(query(1, false, Some(&["s1"])))
            .await
            .unwrap(),
    );
    assert_eq!(
        revised,
        [
            (s("s1"), Some(1), 2, Label::FreeFlow, Label::Heavy),
            (s("s1"), None, 3, Label::Moderate, Label::Heavy),
            (s("s1"), Some(1), 3, Label::Heavy, Label::Congested),
        ]
    );
}

/// The periods the label transitions give: each lane's label before `from`, then its changes.
async fn periods_from_transitions(
    store: &Store,
    labels: &[Label],
    from: chrono::DateTime<Utc>,
    to: chrono::DateTime<Utc>,
) -> Vec<(String, Option<u8>, i64, Option<i64>, bool, Label)> {
    use std::collections::BTreeMap;
    use traffic_store::TransitionQuery;
    let minutes = |t: chrono::DateTime<Utc>| (t - minute(0)).num_minutes();
    let mut open: BTreeMap<(String, Option<u8>), (i64, bool, Label)> = BTreeMap::new();
    for lane in store
        .lane_states(Some(from - TimeDelta::microseconds(1)), None)
        .await
        .unwrap()
    {
        if labels.contains(&lane.label) {
            open.insert(
                (lane.sensor_id.to_string(), lane.lane),
                (minutes(from), true, lane.label),
            );
        }
    }
    let query = TransitionQuery {
        from,
        to,
        sensors: None,
        newest_first: false,
        after: None,
        limit: 1000,
    };
    let mut periods = Vec::new();
    for t in store.transitions(query).await.unwrap().items {
        let key = (t.sensor_id.to_string(), t.lane);
        match (open.remove(&key), labels.contains(&t.to_label)) {
            (Some((start, before, worst)), true) => {
                let worst = if t.to_label.severity() > worst.severity() {
                    t.to_label
                } else {
                    worst
                };
                open.insert(key, (start, before, worst));
            }
            (Some((start, before, worst)), false) => {
                periods.push((key.0, key.1, start, Some(minutes(t.at)), before, worst));
            }
            (None, true) => {
                open.insert(key, (minutes(t.at), false, t.to_label));
            }
            (None, false) => {}
        }
    }
    periods.extend(
        open.into_iter()
            .map(|((s, l), (start, before, worst))| (s, l, start, None, before, worst)),
    );
    periods.sort_by(|a, b| (a.2, &a.0, a.1).cmp(&(b.2, &b.0, b.1)));
    periods
}

pub async fn congestion_periods_are_those_the_label_transitions_give(db: &TestDb) {
    let store = db.store();
    // Label patterns per lane, one character a minute: f free flow, m moderate, h heavy,
    // c congested, '.' no reading.
    let lanes = [
        ("j1", Some(1), "ffhhccccffffcc..ccffhh"),
        ("j1", Some(2), "fcccccfff..cchhcc.."),
        ("j1", None, "fhhhh....hhhhffcc"),
        ("j2", Some(1), "mmmmmmmmmmmmmmmmmm"),
        ("j2", Some(3), "fccccccccccccccccccccc"),
        ("j3", Some(1), "fc.f.c.c.cf"),
    ];
    let label = |c: char| match c {
        'f' => Label::FreeFlow,
        'm' => Label::Moderate,
        'h' => Label::Heavy,
        _ => Label::Congested,
    };
    let mut late = Vec::new();
    for (sensor, lane, pattern) in lanes {
        for (m, c) in pattern.chars().enumerate() {
            if c == '.' {
                continue;
            }
            // Every seventh reading arrives late, after the others are classified.
            if m % 7 == 3 {
                late.push((reading(sensor, lane, m as i64), label(c)));
            } else {
                classified(store, reading(sensor, lane, m as i64), label(c)).await;
            }
        }
    }
    for (reading, label) in late {
        classified(store, reading, label).await;
    }
    store.insert(reading("j1", Some(1), 30)).await.unwrap(); // pending: no label
    for (from, to) in [(0, 30), (3, 12), (5, 6), (10, 40), (-5, 2)] {
        for labels in [&[Label::Congested][..], &[Label::Heavy, Label::Congested]] {
            let (from, to) = (minute(from), minute(to));
            let found: Vec<_> = store
                .congestion_periods(labels, from, to, None)
                .await
                .unwrap()
                .into_iter()
                .map(|p| {
                    let minutes = |t: chrono::DateTime<Utc>| (t - minute(0)).num_minutes();
                    (
                        p.sensor_id.to_string(),
                        p.lane,
                        minutes(p.start),
                        p.end.map(minutes),
                        p.began_before_window,
                        p.worst_label,
                    )
                })
                .collect();
            let expected = periods_from_transitions(store, labels, from, to).await;
            assert_eq!(found, expected, "{labels:?} from {from} to {to}");
        }
    }
    // A lane whose first reading is congested: a period the transitions cannot show (there is
    // no change without an earlier reading).
    classified(store, reading("j4", None, 2), Label::Congested).await;
    let all = store
        .congestion_periods(&[Label::Congested], minute(0), minute(30), None)
        .await
        .unwrap();
    let j4: Vec<_> = all
        .iter()
        .filter(|p| p.sensor_id.as_str() == "j4")
        .collect();
    assert_eq!(j4.len(), 1);
    assert_eq!(
        (j4[0].start, j4[0].end, j4[0].began_before_window),
        (minute(2), None, false)
    );
    let only_j3 = store
        .congestion_periods(
            &[Label::Congested],
            minute(0),
            minute(30),
            Some(&[sensor("j3")]),
        )
        .await
        .unwrap();
    assert!(only_j3.iter().all(|p| p.sensor_id.as_str() == "j3") && !only_j3.is_empty());
}

/// Sums of each series plan: from [`Store::series_sources`], and from every reading one by
/// one (a one-minute plan never reads the rollups).
async fn series_both_ways(
    store: &Store,
    sensor: &str,
    lane: Option<u8>,
    size: BucketSize,
    from: i64,
    to: i64,
) -> (Vec<Bucket>, Vec<Bucket>, usize) {
    let plan = Plan::new(size, zone_or_utc(None), minute(from), minute(to), 1000).unwrap();
    let raw = Plan::new(
        BucketSize::Minute,
        zone_or_utc(None),
        minute(from),
        minute(to),
        1000,
    )
    .unwrap();
    let sources = store
        .series_sources(SensorId::parse(sensor).unwrap(), lane, &plan)
        .await
        .unwrap();
    let readings = store
        .series_sources(SensorId::parse(sensor).unwrap(), lane, &raw)
        .await
        .unwrap();
    assert!(readings.rollups.is_empty());
    (
        plan.sum(&sources.observations, &sources.rollups),
        plan.sum(&readings.observations, &[]),
        sources.rollups.len(),
    )
}

/// Every row of both rollup tables, in key order.
async fn rollup_rows(db: &TestDb) -> Vec<Option<String>> {
    let mut rows = Vec::new();
    for table in ["rollup_5m", "rollup_1h"] {
        rows.extend(
            db.strings(&format!(
                "SELECT to_jsonb(r)::text AS v FROM {table} r ORDER BY sensor_id, lane, start"
            ))
            .await,
        );
    }
    rows
}

/// The rollups kept equal those built from scratch, an hour at a time, up to the same
/// watermark.
async fn assert_rollups_rebuild_alike(db: &TestDb) {
    let kept = rollup_rows(db).await;
    let built_until = db
        .strings("SELECT built_until::text AS v FROM rollup_watermark")
        .await;
    db.execute_raw(
        "DELETE FROM rollup_5m; DELETE FROM rollup_1h; \
         UPDATE rollup_watermark SET built_until = NULL",
    )
    .await
    .unwrap();
    let upto = built_until[0].clone().expect("a watermark");
    while db
        .strings(&format!(
            "SELECT build_rollups('{upto}', interval '1 hour')::text AS v"
        ))
        .await[0]
        .is_some()
    {}
    assert_eq!(kept, rollup_rows(db).await);
}

/// Claims everything due and records `verdict_of(id)` for each.
pub(crate) async fn classify_due(
    store: &Store,
    verdict_of: impl Fn(i64) -> Classification,
) -> usize {
    let claimed = store.claim("w", 10_000, LEASE).await.unwrap();
    let results = claimed.iter().map(|e| (e.id, verdict_of(e.id))).collect();
    store.complete_many("w", results).await.unwrap().len()
}

pub async fn series_from_rollups_equal_series_from_every_reading(db: &TestDb) {
    let store = db.store();
    // Two and a half hours of one-minute readings on a lane and a whole carriageway, some
    // without a speed or an occupancy, some with no vehicles.
    let mut readings = Vec::new();
    for k in 0..150_i64 {
        for lane in [Some(1), None] {
            let extra = match k % 7 {
                0 => json!({"avg_speed_kmh": null}),
                1 => json!({"occupancy_pct": null}),
                2 => json!({"vehicle_count": 0, "occupancy_pct": 0.0}),
                _ => json!({"vehicle_count": k % 20 + 1, "avg_speed_kmh": 40.0 + (k % 9) as f64}),
            };
            readings.push(reading_with("roll", lane, k, extra));
        }
    }
    store.insert_many_counted(readings).await.unwrap();
    let verdict_of = |id: i64, round: i64| {
        let mut v = verdict(Label::VARIANTS[((id + round) % 5) as usize]);
        v.level_of_service = LevelOfService::VARIANTS
            .get(((id + round) % 7) as usize)
            .copied();
        v.flow_veh_h_lane = 60.0 * ((id + round) % 30) as f64;
        v.flags = Flag::VARIANTS
            .iter()
            .copied()
            .filter(|f| (id + round + *f as i64) % 4 == 0)
            .collect();
        v
    };
    let claimed = store.claim("w", 1000, LEASE).await.unwrap();
    let results = claimed
        .iter()
        .map(|e| (e.id, verdict_of(e.id, 0)))
        .collect();
    assert_eq!(store.complete_many("w", results).await.unwrap().len(), 300);
    // Nothing is built yet: every series sums the readings.
    let (summed, counted, rollups) =
        series_both_ways(store, "roll", None, BucketSize::Hour, 0, 180).await;
    assert_eq!((summed, rollups), (counted, 0));

    // The 5-minute spans before t0 + 2 h 10 are built (from an hour before the first
    // reading), an hour at a time; the third hour's row holds its first two spans; the next
    // call has nothing to do.
    let step = TimeDelta::hours(1);
    let mut built = Vec::new();
    while let Some(until) = store.build_rollups(minute(133), step).await.unwrap() {
        built.push(until);
    }
    let steps = [0, 60, 120, 130].map(minute).to_vec();
    assert_eq!(built, if db.is_postgres() { steps } else { Vec::new() });
    if db.is_postgres() {
        assert_eq!(
            db.int(&format!(
                "SELECT sum(readings)::int8 AS v FROM rollup_1h WHERE start = '{}'",
                minute(120).to_rfc3339()
            ))
            .await,
            // Two spans of 5 one-minute readings on two lanes.
            20
        );
    }

    // Classified again with other verdicts, in built spans and above them: the first
    // verdicts' shares are taken back from the built ones.
    let again: Vec<i64> = claimed.iter().step_by(9).map(|e| e.id).collect();
    for id in &again {
        store.requeue(*id).await.unwrap();
    }
    assert_eq!(
        classify_due(store, |id| verdict_of(id, 1)).await,
        again.len()
    );
    // Late readings into built spans: one classified (its share is added), others not
    // classified yet; and one queued again, not classified yet (it keeps its classification).
    store
        .insert_many_counted(vec![reading_with("roll", Some(3), 47, json!({}))])
        .await
        .unwrap();
    assert_eq!(classify_due(store, |id| verdict_of(id, 2)).await, 1);
    store.requeue(claimed[40].id).await.unwrap();
    store
        .insert_many_counted(
            (0..4)
                .map(|k| reading_with("roll", Some(2), 30 + k * 11, json!({})))
                .collect(),
        )
        .await
        .unwrap();

    for (lane, size, from, to) in [
        (None, BucketSize::FiveMinutes, 0, 150),
        (Some(1), BucketSize::FiveMinutes, 3, 148),
        (None, BucketSize::FifteenMinutes, -7, 151),
        (None, BucketSize::Hour, 0, 180),
        (Some(1), BucketSize::Hour, 17, 131),
        (None, BucketSize::Day, 0, 150),
    ] {
        let (summed, counted, rollups) =
            series_both_ways(store, "roll", lane, size, from, to).await;
        assert_eq!(summed, counted, "{size} {lane:?} {from}..{to}");
        // PostgreSQL keeps rollups; SQLite sums every reading.
        assert_eq!(
            rollups > 0,
            db.is_postgres(),
            "{size} {lane:?} {from}..{to}"
        );
        assert!(summed.iter().any(|b| b.readings > 0));
    }
    let (day, _, _) = series_both_ways(store, "roll", None, BucketSize::Day, 0, 150).await;
    // The readings of minute 0 started their interval before the window.
    assert_eq!(day[0].readings, 299 + 4);
    assert_eq!(day[0].classified, 299);

    if db.is_postgres() {
        assert!(rollup_rows(db).await.len() > 30);
        assert_rollups_rebuild_alike(db).await;
    }
}

/// Builds that run while workers record classifications into the spans they build sum each
/// classification exactly once: either the build sees it, or it adds its own share.
pub async fn rollup_builds_racing_classification_sum_each_reading_once(db: &TestDb) {
    if !db.is_postgres() {
        return;
    }
    let store = db.store();
    let readings: Vec<_> = (0..360_i64)
        .flat_map(|k| (0..8).map(move |s| reading(&format!("race{s}"), Some(1), k)))
        .collect();
    store.insert_many_counted(readings).await.unwrap();
    let workers: Vec<_> = (0..3)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let owner = format!("w{w}");
                loop {
                    let claimed = store.claim(&owner, 97, LEASE).await.unwrap();
                    if claimed.is_empty() {
                        break;
                    }
                    let results = claimed
                        .iter()
                        .map(|e| (e.id, verdict(Label::VARIANTS[(e.id % 5) as usize])))
                        .collect();
                    store.complete_many(&owner, results).await.unwrap();
                }
            })
        })
        .collect();
    let builder = {
        let store = store.clone();
        tokio::spawn(async move {
            for hour in 1..=6 {
                while store
                    .build_rollups(minute(60 * hour), TimeDelta::minutes(60))
                    .await
                    .unwrap()
                    .is_some()
                {}
                tokio::task::yield_now().await;
            }
        })
    };
    for worker in workers {
        worker.await.unwrap();
    }
    builder.await.unwrap();
    assert_eq!(
        db.int("SELECT sum(readings)::int8 AS v FROM rollup_5m")
            .await,
        db.int(
            "SELECT count(*) AS v FROM events \
              WHERE observed_at - interval_s * interval '1 second' \
                    < (SELECT built_until FROM rollup_watermark)"
        )
        .await
    );
    assert_rollups_rebuild_alike(db).await;
}

/// A sensor's latest reading is the latest of its lanes' and of its whole carriageway's, found
/// whatever the rest of the network holds; a sensor with none has none.
pub async fn the_latest_reading_of_a_sensor_is_the_latest_of_all_its_lanes(db: &TestDb) {
    let store = db.store();
    let sensor = SensorId::parse("latest-1").unwrap();
    assert_eq!(store.latest_of_sensor(sensor.clone()).await.unwrap(), None);
    // Other sensors' newer readings do not count; lane 2's is the latest of this one's.
    let readings = [
        reading("latest-1", Some(0), 10),
        reading("latest-1", Some(2), 30),
        reading("latest-1", Some(1), 20),
        reading("latest-1", None, 25),
        reading("latest-2", Some(0), 50),
    ];
    store.insert_many_counted(readings.to_vec()).await.unwrap();
    let latest = store
        .latest_of_sensor(sensor.clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.reading, readings[1]);
    // Now the whole carriageway's.
    let newest = reading("latest-1", None, 40);
    store.insert(newest.clone()).await.unwrap();
    let latest = store.latest_of_sensor(sensor).await.unwrap().unwrap();
    assert_eq!(latest.reading, newest);
    let unknown = SensorId::parse("latest-none").unwrap();
    assert_eq!(store.latest_of_sensor(unknown).await.unwrap(), None);
}

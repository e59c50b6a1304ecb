//! End-to-end, PostgreSQL only: two `ingest` replicas share one database (which is also the
//! queue); one is killed with SIGKILL in the middle of a 10 000-reading run. The survivor
//! finishes the run, taking over the dead replica's work once its leases expire, and every
//! reading is classified exactly once in effect. And one replica is frozen (SIGSTOP) past its
//! leases and resumed: its stale results must be refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use serde_json::Value;
use smart_traffic_e2e::{Ingest, TestDatabase, all_classified, eventually, metric, reading};

const READINGS: usize = 10_000;
const SENSORS: usize = 100;
/// Readings posted one by one (split between the replicas) before the kill.
const SINGLES: usize = 200;
/// Readings posted in batches (split between the replicas) before the kill; the rest is
/// posted in batches to the survivor after it (some to the victim before it, should
/// classification catch up with the POSTs before the victim is seen holding a lease).
const BATCHED_BEFORE_KILL: usize = 5_800;
const BATCH: usize = 1_000;
/// Short leases, so the dead replica's claims expire quickly.
const LEASE_S: &str = "3";
/// Generous bound for the survivor to finish the whole run.
const FINISHED_WITHIN: Duration = Duration::from_secs(90);

const LAG_COUNT: &str = "smart_traffic_classification_lag_seconds_count";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_of_two_replicas_mid_run_loses_no_reading_and_classifies_none_twice() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    // Small claims keep a worker's round well inside the 3 s lease on a busy machine.
    let env = [("CLASSIFY_LEASE_S", LEASE_S), ("CLASSIFY_BATCH", "100")];
    let survivor = Ingest::start("ingest-survivor", &db, &env).await;
    let mut victim = Ingest::start("ingest-victim", &db, &env).await;

    // Reading i: sensor i % 100 at minute i / 100 (each sensor a plausible series).
    let readings: Vec<Value> = (0..READINGS)
        .map(|i| reading(&format!("e2e-r{:03}", i % SENSORS), (i / SENSORS) as i64))
        .collect();
    let (batched, rest) = readings.split_at(BATCHED_BEFORE_KILL);
    let (singles, after_kill) = rest.split_at(SINGLES);

    // Phase 1: both replicas take POSTs concurrently — batches alternately, then singles.
    let chunks: Vec<&[Value]> = batched.chunks(BATCH).collect();
    tokio::join!(
        post_share(&survivor, &chunks, singles, 0),
        post_share(&victim, &chunks, singles, 1)
    );

    // Kill the victim while it holds leases (mid-batch), right after reading how many results
    // it has written so far. To know exactly what it held at its death, it is first frozen
    // (SIGSTOP): a statement it had already sent still completes on the server, so after a
    // moment its rows in the database no longer change; then SIGKILL (what `kill -9` sends)
    // ends it without running any handler. Should classification have caught up with the
    // POSTs, the victim gets part of the remainder (its own POST wakes its workers at once).
    let mut remainder = after_kill.chunks(BATCH / 2);
    let deadline = Instant::now() + Duration::from_secs(30);
    let (victim_completions_before_kill, orphaned, classified_at_kill) = loop {
        assert!(
            Instant::now() < deadline,
            "the victim never held a lease while work remained: {:?}",
            db.statuses().await
        );
        let completed = metric(&victim.metrics().await, LAG_COUNT, &[]);
        if let Some(held) = freeze_holding_leases(&db, &victim, Duration::from_millis(500)).await {
            let classified = db.statuses().await.classified;
            let status = victim.proc_mut().kill9();
            assert!(!status.success(), "killed: {status}");
            break (completed, held, classified);
        }
        if db.count("status IN ('pending', 'processing')").await == 0 {
            let chunk = remainder.next().expect("readings left to give the victim");
            victim.create_batch(chunk).await;
        }
    };

    // Phase 2: the rest goes to the survivor.
    for chunk in remainder {
        survivor.create_batch(chunk).await;
    }

    all_classified(
        &db,
        "the survivor classifies all 10 000 readings",
        READINGS as u64,
        FINISHED_WITHIN,
    )
    .await;

    // In the database: 10 000 rows, every one classified with its result, none pending,
    // processing or failed, no lease left behind.
    let statuses = db.statuses().await;
    assert_eq!(db.count("TRUE").await, READINGS as i64, "{statuses:?}");
    assert_eq!(statuses.classified, READINGS as u64, "{statuses:?}");
    assert_eq!(
        db.count(
            "status = 'classified' AND label IS NOT NULL AND classifier_version IS NOT NULL \
             AND classified_at IS NOT NULL AND lease_owner IS NULL AND lease_until IS NULL \
             AND attempts >= 1"
        )
        .await,
        READINGS as i64
    );
    // The dead replica's claims were taken over after their leases expired: each counts a
    // second claim.
    let orphaned_list = orphaned
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(
        db.count(&format!(
            "id IN ({orphaned_list}) AND status = 'classified' AND attempts >= 2"
        ))
        .await,
        orphaned.len() as i64,
        "every event the victim held at its death was re-claimed and classified"
    );

    // No reading classified twice. A result is written only by a guarded UPDATE (status
    // 'processing', lease owner = writer, lease live) that sets 'classified', and nothing in
    // this run moves an event out of 'classified' (no re-queue), so each event can be
    // completed once; each replica observes the lag histogram exactly once per event whose
    // result its UPDATE actually wrote (refused, lease-lost results are not observed). So
    // summed over both replicas, the histogram counts equal the events written: 10 000.
    // The dead replica's final count is out of reach, but it is at least the value read just
    // before it was frozen, and at most what was classified in the database while it was
    // frozen (it wrote nothing after). Hence, with S the survivor's count:
    //   S + victim_before_kill <= 10 000          (a double completion would break this), and
    //   S >= 10 000 - classified_at_kill          (a lost completion would break this).
    // The first bound misses only double completions by the victim in the few milliseconds
    // between the scrape and SIGSTOP, which nothing could observe. (SIGKILL leaves no chance
    // of a stale write; the frozen-replica test below is the one that makes a live replica
    // try one, with exact accounting.)
    let survivor_completions = metric(&survivor.metrics().await, LAG_COUNT, &[]);
    let readings = READINGS as f64;
    eprintln!(
        "victim: {victim_completions_before_kill} results before the kill, {} leases orphaned; \
         survivor: {survivor_completions} results; classified at the kill: {classified_at_kill}; \
         events claimed more than once: {}",
        orphaned.len(),
        db.count("attempts >= 2").await
    );
    assert!(
        survivor_completions + victim_completions_before_kill <= readings,
        "more results written than readings: survivor {survivor_completions} + victim \
         {victim_completions_before_kill} > {READINGS}"
    );
    assert!(
        survivor_completions >= readings - classified_at_kill as f64,
        "the survivor wrote {survivor_completions} results but {} events were classified \
         after the victim died",
        readings - classified_at_kill as f64
    );
}

/// A replica frozen (SIGSTOP) while it holds leases: the other replica takes its events over
/// once the leases expire and classifies them; when the frozen replica resumes (SIGCONT) and
/// finishes the batch it was holding, the lease guard refuses its stale results. With both
/// replicas alive at the end, the accounting is exact: the results each replica wrote (its
/// lag histogram count) sum to the number of readings — a stale result written over the
/// taken-over events would make the sum exceed it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_frozen_past_its_leases_cannot_overwrite_the_events_taken_over_from_it() {
    const N: usize = 2_000;
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let env = [("CLASSIFY_LEASE_S", LEASE_S), ("CLASSIFY_BATCH", "100")];
    let survivor = Ingest::start("ingest-survivor", &db, &env).await;
    let frozen = Ingest::start("ingest-frozen", &db, &env).await;
    let readings: Vec<Value> = (0..N)
        .map(|i| reading(&format!("e2e-f{:02}", i % 40), (i / 40) as i64))
        .collect();
    let (first, rest) = readings.split_at(N / 2);
    let chunks: Vec<&[Value]> = first.chunks(250).collect();
    tokio::join!(
        post_share(&survivor, &chunks, &[], 0),
        post_share(&frozen, &chunks, &[], 1)
    );
    let mut remainder = rest.chunks(250);

    // Freeze the replica while it holds leases. A write it had already sent lands within
    // moments; after that its claims in the database are stable.
    let deadline = Instant::now() + Duration::from_secs(30);
    let held = loop {
        assert!(
            Instant::now() < deadline,
            "the replica never held a lease while work remained: {:?}",
            db.statuses().await
        );
        if let Some(held) = freeze_holding_leases(&db, &frozen, Duration::from_millis(300)).await {
            break held;
        }
        // Classification caught up: give this replica more work (its POST wakes it).
        if db.count("status IN ('pending', 'processing')").await == 0 {
            let chunk = remainder.next().expect("readings left to post");
            frozen.create_batch(chunk).await;
        }
    };
    let held_list = held
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");

    // The rest goes to the other replica; while the first is frozen, the other takes its
    // events over after the leases expire.
    for chunk in remainder {
        survivor.create_batch(chunk).await;
    }
    eventually(
        "the frozen replica's events taken over and classified",
        Duration::from_secs(30),
        || async {
            let done = db
                .count(&format!(
                    "id IN ({held_list}) AND status = 'classified' AND attempts >= 2"
                ))
                .await;
            if done == held.len() as i64 {
                Ok(())
            } else {
                Err(format!("{done} of {} done", held.len()))
            }
        },
    )
    .await;

    // Thawed, it finishes the batch it was holding: the results must be refused (it logs
    // that); results written over the taken-over events would show as too many completions.
    frozen.proc().signal("-CONT");
    eventually(
        "the thawed replica's stale results refused",
        Duration::from_secs(20),
        || async {
            let written = metric(&survivor.metrics().await, LAG_COUNT, &[])
                + metric(&frozen.metrics().await, LAG_COUNT, &[]);
            assert!(
                written <= N as f64,
                "{written} results written for {N} readings: the thawed replica overwrote \
                 events taken over from it"
            );
            if frozen.proc().log().contains("results refused") {
                Ok(())
            } else {
                Err(format!(
                    "no \"results refused\" in its log yet; {written} results written"
                ))
            }
        },
    )
    .await;
    all_classified(&db, "all readings classified", N as u64, FINISHED_WITHIN).await;
    // A result is counted just after its UPDATE returns: let the last counts settle.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let survivor_completions = metric(&survivor.metrics().await, LAG_COUNT, &[]);
    let frozen_completions = metric(&frozen.metrics().await, LAG_COUNT, &[]);
    eprintln!(
        "{} events held while frozen; results written: survivor {survivor_completions}, \
         thawed replica {frozen_completions}",
        held.len()
    );
    assert_eq!(
        survivor_completions + frozen_completions,
        N as f64,
        "each reading's result is written exactly once (survivor {survivor_completions} + \
         thawed replica {frozen_completions})"
    );
    assert_eq!(
        db.count(
            "status = 'classified' AND label IS NOT NULL AND classified_at IS NOT NULL \
             AND lease_owner IS NULL AND lease_until IS NULL"
        )
        .await,
        N as i64
    );
}

/// If `replica` holds leases: freezes it (SIGSTOP), waits `settle` for the statements it had
/// already sent to land, and returns the ids of the events it then holds. `None` when it holds
/// none, thawed again (SIGCONT) if it had just finished what it held.
async fn freeze_holding_leases(
    db: &TestDatabase,
    replica: &Ingest,
    settle: Duration,
) -> Option<Vec<i64>> {
    let held_by_it = format!(
        "status = 'processing' AND lease_owner LIKE 'ingest-{}-%'",
        replica.proc().pid()
    );
    if db.count(&held_by_it).await == 0 {
        return None;
    }
    replica.proc().signal("-STOP");
    tokio::time::sleep(settle).await;
    let held = db
        .ints(&format!(
            "SELECT id AS v FROM event_states WHERE {held_by_it} ORDER BY id"
        ))
        .await;
    if held.is_empty() {
        replica.proc().signal("-CONT");
        return None;
    }
    Some(held)
}

/// Every other batch and every other single reading, starting at `parity`.
async fn post_share(replica: &Ingest, chunks: &[&[Value]], singles: &[Value], parity: usize) {
    for chunk in chunks.iter().skip(parity).step_by(2) {
        replica.create_batch(chunk).await;
    }
    for single in singles.iter().skip(parity).step_by(2) {
        replica.create(single).await;
    }
}

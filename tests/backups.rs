//! Backups as docs/operations.md takes them, restored and read back: `pg_dump -Fc` and
//! `pg_restore` for PostgreSQL, and SQLite's online backup (`sqlite3 FILE ".backup COPY"`)
//! taken while the service runs. A service started on the restored copy holds every row and
//! answers the same reads as the original.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::{Value, json};
use smart_traffic_e2e::{
    CLASSIFIED_WITHIN, Ingest, TestDatabase, all_classified, at, on_both_backends, reading,
};
use traffic_store::DatabaseUrl;

on_both_backends! {
    a_restored_backup_holds_every_row_and_answers_the_same_reads,
}

/// Reads whose answers do not move with the clock.
fn reads() -> Vec<String> {
    vec![
        "/v1/events?limit=1000".to_owned(),
        format!("/v1/state?at={}", at(60).replace('+', "%2B")),
        format!(
            "/v1/sensors/bk-1/series?bucket=5m&from={}&to={}",
            at(-5).replace('+', "%2B"),
            at(60).replace('+', "%2B")
        ),
        format!(
            "/v1/transitions?from={}&to={}",
            at(-5).replace('+', "%2B"),
            at(60).replace('+', "%2B")
        ),
    ]
}

async fn answers(ingest: &Ingest) -> Vec<Value> {
    let client = reqwest::Client::new();
    let mut all = Vec::new();
    for path in reads() {
        let response = client.get(ingest.url(&path)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "GET {path}");
        all.push(response.json().await.unwrap());
    }
    all
}

fn run(command: &mut Command) {
    let output = command.output().expect("the tool runs");
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn rows(db: &TestDatabase) -> (i64, i64, i64) {
    (
        db.int("SELECT count(*) AS v FROM events").await,
        db.int("SELECT count(*) AS v FROM classifications").await,
        db.int("SELECT count(*) AS v FROM sensors").await,
    )
}

async fn a_restored_backup_holds_every_row_and_answers_the_same_reads(db: TestDatabase) {
    let original = Ingest::start("original", &db, &[]).await;
    let place = json!({"road": "A1", "location": {"lat": 52.5, "lon": 13.4}, "lanes": 2});
    original.put_sensor("bk-1", &place).await;
    let batch: Vec<Value> = (0..40)
        .flat_map(|m| [reading("bk-1", m), reading("bk-2", m)])
        .collect();
    original.create_batch(&batch).await;
    all_classified(&db, "every reading classified", 80, CLASSIFIED_WITHIN).await;
    let before = answers(&original).await;
    let counted = rows(&db).await;
    assert_eq!(counted, (80, 80, 1));

    let copy;
    let restored = match db.url() {
        DatabaseUrl::Sqlite(path) => {
            // Online: the service keeps running while the copy is taken; the copy is restored
            // by starting on it.
            copy = TestDatabase::sqlite();
            let DatabaseUrl::Sqlite(target) = copy.url() else {
                unreachable!("a SQLite copy")
            };
            run(Command::new("sqlite3")
                .arg(path)
                .arg(format!(".backup '{}'", target.display())));
            drop(original);
            &copy
        }
        DatabaseUrl::Postgres(_) => {
            let (server, schema) = db.postgres_schema().expect("a PostgreSQL test");
            let dump = db.dir().join("traffic.dump");
            // The test's database is one schema of the server: the dump holds that schema.
            run(Command::new("pg_dump")
                .args(["-Fc", "-n", schema, "-f"])
                .arg(&dump)
                .arg(server));
            drop(original);
            // Everything lost, then restored.
            db.execute(&format!("DROP SCHEMA {schema} CASCADE"))
                .await
                .unwrap();
            run(Command::new("pg_restore")
                .args(["--no-owner", "-d", server])
                .arg(&dump));
            &db
        }
    };
    assert_eq!(rows(restored).await, counted);
    let again = Ingest::start("restored", restored, &[]).await;
    assert_eq!(answers(&again).await, before);
}

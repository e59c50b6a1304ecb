//! The read cache in Redis (a `redis-server` of each test's own): hits after a miss with their
//! validators, every kind of write retiring what it changes, two replicas that never serve a
//! view missing an acknowledged write, and Redis failing under the service.

use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use reqwest::Response;
use reqwest::header::{ETAG, IF_NONE_MATCH};
use serde_json::{Value, json};
use traffic_store::test_util::reading_json_at;

use crate::redis_server::{RedisServer, UseRedis};
use crate::support::{Backend, TestApp, TestDb, eventually, send, settings, with_classifier};

/// A reading of `sensor` observed `minutes_ago`.
fn reading(sensor: &str, minutes_ago: i64) -> Value {
    reading_json_at(
        sensor,
        Some(1),
        Utc::now() - TimeDelta::minutes(minutes_ago),
    )
}

fn source(response: &Response) -> String {
    response
        .headers()
        .get("x-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// GET `path`: its status, `X-Cache`, `ETag` and body.
async fn read(app: &TestApp, path: &str) -> (u16, String, String, Value) {
    let response = send(app.get(path)).await;
    let status = response.status().as_u16();
    let (cache, etag) = (
        source(&response),
        response
            .headers()
            .get(ETAG)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default(),
    );
    let body = response.json().await.unwrap_or(Value::Null);
    (status, cache, etag, body)
}

/// Reads `path` until it is served from the cache, and returns that answer's body: a second
/// read with no write between is a hit.
async fn cached(app: &TestApp, path: &str) -> Value {
    let (status, _, _, first) = read(app, path).await;
    assert_eq!(status, 200, "GET {path}");
    let (status, cache, _, second) = read(app, path).await;
    assert_eq!((status, cache.as_str()), (200, "hit"), "GET {path} again");
    assert_eq!(first, second, "GET {path}: the hit differs from the miss");
    second
}

fn ids(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["id"].as_i64().expect("id"))
        .collect()
}

/// Waits until the workers have classified every event: no write is under way.
async fn settled(app: &TestApp) {
    let all_classified = || async {
        let page = read(app, "/v1/events?limit=1000").await.3;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["status"] == "classified")
    };
    assert!(eventually(Duration::from_secs(10), all_classified).await);
}

async fn cached_app(backend: Backend, redis: &RedisServer) -> TestApp {
    TestApp::spawn_with(backend, |s| redis.configure(s, "t")).await
}

pub async fn a_second_read_is_a_hit_with_the_same_etag_and_if_none_match_gets_304(
    backend: Backend,
) {
    let redis = RedisServer::start().await;
    let app = cached_app(backend, &redis).await;
    let id = app.create(&reading("c1", 5)).await["id"].as_i64().unwrap();
    let path = format!("/v1/events/{id}");
    let (status, cache, etag, body) = read(&app, &path).await;
    assert_eq!((status, cache.as_str()), (200, "miss"));
    assert!(etag.starts_with("W/\""), "{etag}");
    let (status, cache, again, hit) = read(&app, &path).await;
    assert_eq!((status, cache.as_str()), (200, "hit"));
    assert_eq!((again, hit), (etag.clone(), body));
    let response = send(app.get(&path).header(IF_NONE_MATCH, etag.as_str())).await;
    assert_eq!(response.status().as_u16(), 304);
    assert_eq!(response.headers()[ETAG].to_str().unwrap(), etag);
    assert!(response.bytes().await.unwrap().is_empty());
    // Another body, another validator.
    let response = send(app.get(&path).header(IF_NONE_MATCH, "W/\"0\"")).await;
    assert_eq!(response.status().as_u16(), 200);
    // Each endpoint the cache serves.
    app.put_sensor("c1", json!({"road": "A1"})).await;
    for path in [
        "/v1/events?sensor_id=c1",
        "/v1/events",
        "/v1/sensors",
        "/v1/sensors/c1",
        "/v1/state",
        "/v1/sensors/c1/series?bucket=1h",
    ] {
        cached(&app, path).await;
    }
    let metrics = app.get_text("/metrics").await;
    assert!(
        metrics.contains("smart_traffic_cache_lookups_total{kind=\"view\",outcome=\"hit\"}"),
        "{metrics}"
    );
    // Errors are answered from the database, not cached.
    let (status, cache, _, _) = read(&app, "/v1/events/999999").await;
    let (again, cache_again, _, _) = read(&app, "/v1/events/999999").await;
    assert_eq!((status, again), (404, 404));
    assert_eq!((cache.as_str(), cache_again.as_str()), ("", ""));
}

pub async fn without_redis_answers_carry_validators_and_none_is_cached(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.create(&reading("n1", 5)).await["id"].as_i64().unwrap();
    let path = format!("/v1/events/{id}");
    let (_, cache, etag, _) = read(&app, &path).await;
    let (_, again, same, _) = read(&app, &path).await;
    assert_eq!((cache.as_str(), again.as_str()), ("miss", "miss"));
    assert_eq!(etag, same);
    let response = send(app.get(&path).header(IF_NONE_MATCH, etag.as_str())).await;
    assert_eq!(response.status().as_u16(), 304);
}

pub async fn every_kind_of_write_retires_the_views_it_changes(backend: Backend) {
    let redis = RedisServer::start().await;
    let db = TestDb::new(backend).await;
    let mut with_workers = settings(traffic_store::StoreConfig::new(db.url().clone()));
    redis.configure(&mut with_workers, "w");
    with_classifier(&mut with_workers);
    let app = TestApp::start(with_workers, Some(db)).await;

    // A reading: its sensor's events and the network's.
    let first = app.create(&reading("k1", 9)).await["id"].as_i64().unwrap();
    let classified = |id: i64| {
        let app = &app;
        async move {
            let (_, _, _, event) = read(app, &format!("/v1/events/{id}")).await;
            event["status"] == "classified"
        }
    };
    assert!(eventually(Duration::from_secs(10), || classified(first)).await);
    let listing = "/v1/events?sensor_id=k1";
    assert_eq!(ids(&cached(&app, listing).await), [first]);
    cached(&app, "/v1/events").await;
    let second = app.create(&reading("k1", 8)).await["id"].as_i64().unwrap();
    // Read at once, before the worker classifies it: the views hold it.
    assert!(ids(&read(&app, listing).await.3).contains(&second));
    assert!(ids(&read(&app, "/v1/events").await.3).contains(&second));

    // A classification: the event as pending is not served once it is classified.
    assert!(eventually(Duration::from_secs(10), || classified(second)).await);
    let event = cached(&app, &format!("/v1/events/{second}")).await;
    assert_eq!(event["status"], "classified");

    // A re-queue: the event is pending, or classified again, never the view from before.
    let requeued = app.requeue(second).await;
    // Queued again: waiting, or already claimed by a worker the re-queue woke.
    assert!(
        ["pending", "processing"].contains(&requeued["status"].as_str().unwrap_or("")),
        "{requeued}"
    );
    let (_, cache, _, again) = read(&app, &format!("/v1/events/{second}")).await;
    assert_eq!(cache, "miss");
    assert_ne!(again, event);

    // A batch.
    settled(&app).await;
    cached(&app, listing).await;
    let batch = json!([reading("k1", 7), reading("k2", 7)]);
    let response = send(app.post("/v1/events/batch").json(&batch)).await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        read(&app, listing).await.3["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // Sensor metadata, put and patched: the sensor's summary and the listing.
    settled(&app).await;
    cached(&app, "/v1/sensors/k1").await;
    cached(&app, "/v1/sensors").await;
    app.put_sensor("k1", json!({"road": "B7"})).await;
    assert_eq!(
        read(&app, "/v1/sensors/k1").await.3["metadata"]["road"],
        "B7"
    );
    let listed = read(&app, "/v1/sensors").await.3;
    let k1 = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["sensor_id"] == "k1")
        .cloned()
        .expect("k1 listed");
    assert_eq!(k1["metadata"]["road"], "B7");
    cached(&app, "/v1/sensors/k1").await;
    let response = send(
        app.request(reqwest::Method::PATCH, "/v1/sensors/k1")
            .header("content-type", "application/merge-patch+json")
            .body(r#"{"road": "B8"}"#),
    )
    .await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        read(&app, "/v1/sensors/k1").await.3["metadata"]["road"],
        "B8"
    );
    // A write to one sensor leaves another's views cached.
    cached(&app, "/v1/sensors/k2").await;
    app.create(&reading("k1", 3)).await;
    assert_eq!(read(&app, "/v1/sensors/k2").await.1, "hit");
}

/// Two replicas over one database and one Redis, writers busy on other sensors: after each
/// acknowledged reading, the other replica's views hold it.
pub async fn two_replicas_never_serve_a_view_missing_an_acknowledged_write(backend: Backend) {
    if backend != Backend::Postgres {
        return; // Replicas share PostgreSQL; SQLite runs one process.
    }
    let redis = RedisServer::start().await;
    let db = TestDb::new(backend).await;
    let replica = |prefix: &'static str| {
        let mut s = settings(traffic_store::StoreConfig::new(db.url().clone()));
        redis.configure(&mut s, prefix);
        TestApp::start(s, None)
    };
    let (a, b) = (replica("shared").await, replica("shared").await);
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let (client, url) = (a.client.clone(), a.url("/v1/events"));
            tokio::spawn(async move {
                for k in 0..40_i64 {
                    let body = reading(&format!("busy{w}"), 500 - k);
                    let response = client.post(&url).json(&body).send().await.unwrap();
                    assert!(response.status().is_success());
                }
            })
        })
        .collect();
    let mut hits = 0;
    for k in 0..40_i64 {
        let writer = if k % 2 == 0 { &a } else { &b };
        let id = writer.create(&reading("rw", 400 - k)).await["id"]
            .as_i64()
            .unwrap();
        for reader in [&b, &a] {
            let (status, _, _, event) = read(reader, &format!("/v1/events/{id}")).await;
            assert_eq!(status, 200, "event {id}");
            assert_eq!(event["id"], id);
            let page = read(reader, "/v1/events?sensor_id=rw&limit=1000").await.3;
            assert!(
                ids(&page).contains(&id),
                "{id} missing from a view after its 2xx"
            );
            let page = read(reader, "/v1/events?limit=1000").await.3;
            assert!(
                ids(&page).contains(&id),
                "{id} missing from the network's view"
            );
            let (_, cache, _, summary) = read(reader, "/v1/sensors/rw").await;
            assert_eq!(summary["latest"]["id"], id, "the sensor's latest is {id}");
            let again = read(reader, "/v1/events?sensor_id=rw&limit=1000").await;
            hits += usize::from(again.1 == "hit") + usize::from(cache == "hit");
        }
    }
    for writer in writers {
        writer.await.unwrap();
    }
    // Sensor views are retired by their own sensor's writes only: the writers elsewhere left
    // them cached.
    assert!(hits > 20, "only {hits} hits");
}

/// Redis frozen, then back with its data, then killed and started afresh, then flushed: every
/// request is answered meanwhile, quickly, and a write whose retirement Redis missed is never
/// hidden by a view cached before it.
pub async fn with_redis_failing_every_request_is_answered_and_no_view_is_stale(backend: Backend) {
    let mut redis = RedisServer::start().await;
    let app = cached_app(backend, &redis).await;
    app.create(&reading("f1", 9)).await;
    let listing = "/v1/events?sensor_id=f1";
    cached(&app, listing).await;
    assert_eq!(app.get_ok("/v1/ready").await["redis"], "up");

    redis.pause();
    let started = Instant::now();
    let during = app.create(&reading("f1", 8)).await["id"].as_i64().unwrap();
    for _ in 0..20 {
        let (status, cache, _, page) = read(&app, listing).await;
        assert_eq!(status, 200);
        assert_ne!(cache, "hit");
        assert!(ids(&page).contains(&during));
    }
    // One command timeout (100 ms) per Redis call at most, and mostly none: Redis is tried
    // again once a second, not on every request.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(app.get_ok("/v1/ready").await["redis"], "degraded");
    let metrics = app.get_text("/metrics").await;
    assert!(
        metrics.contains("smart_traffic_redis_errors_total"),
        "{metrics}"
    );

    // Back, with the view cached before the write: it is never served.
    redis.resume();
    assert!(
        eventually(Duration::from_secs(5), || async {
            let (_, cache, _, page) = read(&app, listing).await;
            assert!(
                ids(&page).contains(&during),
                "a stale view after Redis came back"
            );
            cache == "hit"
        })
        .await,
        "the cache does not serve again"
    );
    assert_eq!(app.get_ok("/v1/ready").await["redis"], "up");

    // Killed and started afresh, empty.
    redis.kill();
    let (status, _, _, _) = read(&app, listing).await;
    assert_eq!(status, 200);
    let after = app.create(&reading("f1", 7)).await["id"].as_i64().unwrap();
    redis.restart().await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            let (status, cache, _, page) = read(&app, listing).await;
            assert_eq!(status, 200);
            assert!(ids(&page).contains(&after));
            cache == "hit"
        })
        .await,
        "the cache does not serve after a restart"
    );

    // Flushed: versions start afresh at random values, no view from before is named again.
    cached(&app, listing).await;
    assert_eq!(redis.cli(&["FLUSHALL"]).as_deref(), Some("OK"));
    let (status, cache, _, _) = read(&app, listing).await;
    assert_eq!((status, cache.as_str()), (200, "miss"));
    let flushed = app.create(&reading("f1", 6)).await["id"].as_i64().unwrap();
    assert!(ids(&cached(&app, listing).await).contains(&flushed));
}

/// A counter of `/metrics` with these labels, 0 when absent.
async fn counter(app: &TestApp, name_and_labels: &str) -> u64 {
    let metrics = app.get_text("/metrics").await;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or(0)
}

async fn bucket_hits(app: &TestApp) -> u64 {
    counter(
        app,
        "smart_traffic_cache_lookups_total{kind=\"bucket\",outcome=\"hit\"}",
    )
    .await
}

/// The buckets of a series, with the fields that vary with the request left out.
async fn buckets(app: &TestApp, path: &str) -> (String, Vec<Value>) {
    let (status, cache, _, body) = read(app, path).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    (cache, body["buckets"].as_array().expect("buckets").clone())
}

fn readings_of(buckets: &[Value]) -> u64 {
    buckets
        .iter()
        .map(|b| b["readings"].as_u64().unwrap())
        .sum()
}

/// Settled buckets come from the cache while new readings arrive, and are the same as summed
/// from the database; a late reading, a re-queue, a classification and new metadata each
/// retire them. A window that ends in the settled past stays cached across new readings.
pub async fn settled_series_buckets_are_cached_until_a_late_write(backend: Backend) {
    let redis = RedisServer::start().await;
    let db = TestDb::new(backend).await;
    let mut s = settings(traffic_store::StoreConfig::new(db.url().clone()));
    redis.configure(&mut s, "h");
    with_classifier(&mut s);
    // Buckets that ended 10 minutes ago are settled; a write is late 5 minutes back.
    s.cache.settled = Duration::from_secs(600);
    let app = TestApp::start(s, Some(db)).await;
    let now = Utc::now();
    let readings: Vec<Value> = (3..=24)
        .map(|k| reading_json_at("h1", Some(1), now - TimeDelta::minutes(5 * k)))
        .collect();
    app.create_many(&readings).await;
    settled(&app).await;

    // A window that starts inside a bucket and ends in the future (its view is retired by
    // every write of the sensor; its settled buckets are not), in minutes: PostgreSQL's rollups
    // serve longer buckets, SQLite sums every reading of either.
    let at = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let from = at(now - TimeDelta::minutes(123));
    let to = at(now + TimeDelta::minutes(2));
    let query = |extra: &str| format!("/v1/sensors/h1/series?from={from}&to={to}{extra}");
    let path = query("&bucket=1m");
    let (cache, first) = buckets(&app, &path).await;
    assert_eq!(cache, "miss");
    assert_eq!(readings_of(&first), 22);
    let hits = bucket_hits(&app).await;
    app.create(&reading_json_at("h1", Some(1), Utc::now()))
        .await;
    settled(&app).await;
    // The settled buckets are stored in the background after the first read.
    let started = Instant::now();
    let again = loop {
        let (cache, read) = buckets(&app, &path).await;
        assert_eq!(cache, "miss", "a new reading retires the sensor's views");
        assert_eq!(readings_of(&read), 23, "the new reading is summed");
        if bucket_hits(&app).await > hits {
            break read;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no settled bucket came from the cache"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The same as summed wholly from the database (another lane filter: no stored bucket).
    let (_, fresh) = buckets(&app, &query("&bucket=1m&lane=1")).await;
    assert_eq!(again, fresh);

    // A late reading lands in a settled bucket: it is summed at once.
    let late_at = now - TimeDelta::minutes(47);
    let late = app.create(&reading_json_at("h1", Some(1), late_at)).await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(readings_of(&buckets(&app, &path).await.1), 24);

    // A re-queue and the classification after it: the bucket's classified count follows.
    settled(&app).await;
    let classified = |buckets: &[Value]| -> u64 {
        buckets
            .iter()
            .map(|b| b["classified"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(classified(&buckets(&app, &path).await.1), 24);
    app.requeue(late).await;
    assert!(classified(&buckets(&app, &path).await.1) <= 24);
    assert!(
        eventually(Duration::from_secs(10), || async {
            classified(&buckets(&app, &path).await.1) == 24
        })
        .await
    );
    let (_, summed) = buckets(&app, &query("&bucket=1m&lane=1")).await;
    assert_eq!(buckets(&app, &path).await.1, summed);

    // A window in the settled past: cached under the sensor's history, so new readings leave
    // it; a late one retires it.
    let past = format!(
        "/v1/sensors/h1/series?from={from}&to={}",
        at(now - TimeDelta::minutes(30))
    );
    // Once the last classification's retirement, which follows its commit, is done.
    settled(&app).await;
    let history = |redis: &RedisServer| redis.cli(&["GET", "h:version:history:h1"]);
    let mut version = history(&redis);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = history(&redis);
        if now == version {
            break;
        }
        version = now;
    }
    let before = cached(&app, &past).await;
    app.create(&reading_json_at("h1", Some(1), Utc::now()))
        .await;
    settled(&app).await;
    let (_, cache, _, body) = read(&app, &past).await;
    assert_eq!((cache.as_str(), &body), ("hit", &before));
    assert_eq!(history(&redis), version, "a reading of now is not late");
    app.create(&reading_json_at(
        "h1",
        Some(1),
        now - TimeDelta::minutes(61),
    ))
    .await;
    let (_, cache, _, body) = read(&app, &past).await;
    assert_eq!(cache, "miss");
    assert_eq!(
        readings_of(body["buckets"].as_array().unwrap()),
        readings_of(before["buckets"].as_array().unwrap()) + 1
    );

    // New metadata: a time zone half an hour off UTC moves every hour's bucket.
    let hourly = query("&bucket=1h");
    let (_, utc) = buckets(&app, &hourly).await;
    assert!(utc[1]["start"].as_str().unwrap().contains(":00:00"));
    app.put_sensor("h1", json!({"time_zone": "Asia/Kolkata"}))
        .await;
    let (_, local) = buckets(&app, &hourly).await;
    assert!(
        local[1]["start"].as_str().unwrap().contains(":30:00"),
        "{local:?}"
    );
    assert_eq!(readings_of(&local), readings_of(&utc));
}

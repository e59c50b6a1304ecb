//! `GET /v1/stream`: classified events and label transitions as Server-Sent Events, read by a
//! real HTTP client while the in-process classifier classifies posted readings.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::header::ACCEPT;
use serde_json::Value;

use crate::support::{Backend, TestApp, lane_reading as reading, problem, send, with_classifier};

/// One server-sent event.
#[derive(Debug, Clone)]
struct Sse {
    id: Option<String>,
    event: String,
    data: Value,
}

/// A connected stream client.
struct Client {
    response: reqwest::Response,
    buffer: String,
    /// Bytes of a character a chunk ended inside, until the next chunk completes it.
    undecoded: Vec<u8>,
}

impl Client {
    async fn connect(app: &TestApp, path: &str, last_event_id: Option<&str>) -> Self {
        let mut request = app.get(path).header(ACCEPT, "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = send(request).await;
        assert_eq!(response.status(), 200, "{path}");
        let media = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(media, "text/event-stream");
        Self {
            response,
            buffer: String::new(),
            undecoded: Vec::new(),
        }
    }

    /// The next event (comments and the retry advice skipped), or `None` after `within`.
    async fn next(&mut self, within: Duration) -> Option<Sse> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, String::from("message"), None);
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data = Some(serde_json::from_str(v).expect("JSON data"));
                    }
                }
                if let Some(data) = data {
                    return Some(Sse { id, event, data });
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk()).await;
            match chunk {
                Ok(Ok(Some(bytes))) => {
                    self.undecoded.extend_from_slice(&bytes);
                    let whole = match std::str::from_utf8(&self.undecoded) {
                        Ok(text) => text.len(),
                        Err(e) if e.error_len().is_none() => e.valid_up_to(),
                        Err(e) => panic!("the stream is not UTF-8: {e}"),
                    };
                    let text: Vec<u8> = self.undecoded.drain(..whole).collect();
                    self.buffer.push_str(std::str::from_utf8(&text).unwrap());
                }
                _ => return None,
            }
        }
    }

    /// Events until `count` arrived (or 10 s passed).
    async fn take(&mut self, count: usize) -> Vec<Sse> {
        let mut events = Vec::new();
        while events.len() < count {
            match self.next(Duration::from_secs(10)).await {
                Some(event) => events.push(event),
                None => break,
            }
        }
        events
    }

    /// The next events, after checking that they are `expected` in the words of [`summary`].
    async fn expect(&mut self, expected: &[&str]) -> Vec<Sse> {
        let events = self.take(expected.len()).await;
        assert_eq!(summary(&events), expected);
        events
    }
}

/// Each event as `"{event} {what}"`: the label of a classified event, `from>to` of a transition
/// (with ` retracted` when it is withdrawn).
fn summary(events: &[Sse]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let what = match e.event.as_str() {
                "classified" => e.data["classification"]["label"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                _ => format!(
                    "{}>{}{}",
                    e.data["from_label"].as_str().unwrap(),
                    e.data["to_label"].as_str().unwrap(),
                    if e.data["retracted"] == true {
                        " retracted"
                    } else {
                        ""
                    }
                ),
            };
            format!("{} {what}", e.event)
        })
        .collect()
}

pub async fn classified_events_and_transitions_reach_stream_clients(backend: Backend) {
    let app = TestApp::spawn_with(backend, with_classifier).await;
    let mut all = Client::connect(&app, "/v1/stream", None).await;
    let mut changes = Client::connect(&app, "/v1/stream?transitions_only=true", None).await;
    let mut elsewhere = Client::connect(&app, "/v1/stream?sensor_id=other", None).await;
    let t0 = Utc::now() - TimeDelta::minutes(10);
    let first = app.create(&reading("s1", t0, false)).await;
    let events = all.expect(&["classified free_flow"]).await;
    assert_eq!(events[0].data["id"], first["id"]);
    assert!(events[0].id.is_some());
    app.create(&reading("s1", t0 + TimeDelta::minutes(1), true))
        .await;
    let events = all
        .expect(&["classified congested", "transition free_flow>congested"])
        .await;
    let transition = &events[1].data;
    assert_eq!(transition["sensor_id"], "s1");
    assert_eq!(transition["lane"], 1);
    assert_eq!(transition["late"], false);
    assert_eq!(transition["previous_event_id"], first["id"]);
    changes.expect(&["transition free_flow>congested"]).await;
    assert!(elsewhere.next(Duration::from_millis(500)).await.is_none());
}

pub async fn a_late_reading_moves_the_transition_and_the_stream_says_so(backend: Backend) {
    let app = TestApp::spawn_with(backend, with_classifier).await;
    let mut client = Client::connect(&app, "/v1/stream?transitions_only=true", None).await;
    // Stored times keep microseconds.
    let t0 = Utc::now() - TimeDelta::minutes(10);
    let t0 = DateTime::from_timestamp_micros(t0.timestamp_micros()).unwrap();
    app.create(&reading("s1", t0, false)).await;
    app.create(&reading("s1", t0 + TimeDelta::minutes(2), true))
        .await;
    client.expect(&["transition free_flow>congested"]).await;
    // A reading from minute 1, late: the jam began a minute earlier.
    app.create(&reading("s1", t0 + TimeDelta::minutes(1), true))
        .await;
    let events = client
        .expect(&[
            "transition free_flow>congested",
            "transition free_flow>congested retracted",
        ])
        .await;
    assert_eq!(events[0].data["late"], true);
    let at = |e: &Sse| DateTime::parse_from_rfc3339(e.data["at"].as_str().unwrap()).unwrap();
    assert_eq!(at(&events[0]), t0 + TimeDelta::minutes(1));
    assert_eq!(at(&events[1]), t0 + TimeDelta::minutes(2));
}

pub async fn a_client_resumes_with_last_event_id(backend: Backend) {
    let app = TestApp::spawn_with(backend, with_classifier).await;
    let t0 = Utc::now() - TimeDelta::minutes(10);
    let mut client = Client::connect(&app, "/v1/stream", None).await;
    app.create(&reading("r1", t0, false)).await;
    let seen = client.take(1).await;
    let last = seen[0].id.clone().expect("an id");
    drop(client);
    // Missed while away.
    app.create(&reading("r2", t0, false)).await;
    app.create(&reading("r3", t0, false)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut back = Client::connect(&app, "/v1/stream", Some(&last)).await;
    let missed = back.take(2).await;
    let sensors: Vec<&str> = missed
        .iter()
        .map(|e| e.data["sensor_id"].as_str().unwrap())
        .collect();
    let mut sorted = sensors.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ["r2", "r3"], "{missed:?}");

    let mut lost = Client::connect(&app, "/v1/stream", Some("no-such-id")).await;
    let reset = lost.next(Duration::from_secs(5)).await.expect("an event");
    assert_eq!(reset.event, "reset");
    assert!(reset.id.is_none());
}

pub async fn bad_stream_requests_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.assert_invalid_query(
        "/v1/stream?label=gridlock&sensor_id=a%20b&every=1",
        &["every", "label", "sensor_id"],
    )
    .await;
    let refused = send(app.get("/v1/stream").header(ACCEPT, "application/json")).await;
    problem(refused, 406, "not-acceptable").await;
}

/// Over real sockets: a client that never reads falls behind once its socket buffers are full
/// and the server's queue for it overflows; it is sent `dropped` and disconnected, while a
/// client that reads gets every event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_dropped_while_a_reading_one_gets_everything() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = TestApp::spawn_with(Backend::Sqlite, with_classifier).await;
    let mut slow = tokio::net::TcpStream::connect(app.address).await.unwrap();
    slow.write_all(
        b"GET /v1/stream HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut fast = Client::connect(&app, "/v1/stream", None).await;
    // 20 000 classified events of about 600 bytes: far more than the kernel's socket buffers
    // hold and the 4096 events the server queues for one client.
    let t0 = Utc::now() - TimeDelta::hours(6);
    let readings: Vec<Value> = (0..20_000_i64)
        .map(|i| {
            reading(
                &format!("flood-{}", i % 100),
                t0 + TimeDelta::seconds(i),
                false,
            )
        })
        .collect();
    let counted = tokio::spawn(async move {
        let mut classified = 0;
        while classified < 20_000 {
            match fast.next(Duration::from_secs(60)).await {
                Some(event) if event.event == "classified" => classified += 1,
                Some(_) => {}
                None => break,
            }
        }
        classified
    });
    for chunk in readings.chunks(10_000) {
        app.create_many(chunk).await;
    }
    assert_eq!(
        counted.await.unwrap(),
        20_000,
        "the reading client got every event"
    );

    // The slow client's socket holds what was sent before it fell behind, then the end.
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), slow.read_to_end(&mut received)).await;
    assert!(read.is_ok(), "the server closed the slow client's stream");
    let text = String::from_utf8_lossy(&received);
    let tail = &text[text.len().saturating_sub(2000)..];
    assert!(tail.contains("event: dropped\n"), "{tail}");
    assert!(
        tail.contains("\"reason\":\"the client fell too far behind\""),
        "{tail}"
    );
}

/// With Redis, replicas fan the stream out through its pub/sub; while Redis does not answer,
/// through PostgreSQL's `NOTIFY`.
pub async fn with_redis_another_replica_s_clients_hear_through_pub_sub(backend: Backend) {
    if backend != Backend::Postgres {
        return; // Replicas share PostgreSQL; SQLite runs one process.
    }
    use crate::redis_server::UseRedis;
    let redis = crate::redis_server::RedisServer::start().await;
    let db = crate::support::TestDb::new(backend).await;
    let replica = |workers: bool| {
        let mut s = crate::support::settings(traffic_store::StoreConfig::new(db.url().clone()));
        redis.configure(&mut s, "fan");
        if workers {
            with_classifier(&mut s);
        }
        TestApp::start(s, None)
    };
    let (classifying, serving) = (replica(true).await, replica(false).await);
    // Both replicas subscribed to the channel.
    let subscribed = || async {
        redis.cli(&["PUBSUB", "NUMSUB", "fan:classified"]) == Some("fan:classified\n2".to_owned())
    };
    assert!(crate::support::eventually(Duration::from_secs(5), subscribed).await);
    let mut client = Client::connect(&serving, "/v1/stream", None).await;
    let t0 = Utc::now() - TimeDelta::minutes(10);
    let first = classifying.create(&reading("fan1", t0, false)).await;
    let events = client.expect(&["classified free_flow"]).await;
    assert_eq!(events[0].data["id"], first["id"]);
    // Through Redis: the worker published.
    let stats = redis.cli(&["INFO", "commandstats"]).unwrap_or_default();
    assert!(stats.contains("cmdstat_publish:calls="), "{stats}");

    redis.pause();
    let second = classifying
        .create(&reading("fan1", t0 + TimeDelta::minutes(1), false))
        .await;
    let events = client.expect(&["classified free_flow"]).await;
    assert_eq!(events[0].data["id"], second["id"]);
    redis.resume();
}

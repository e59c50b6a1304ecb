//! The running service under test: a fresh database per test (a temporary SQLite file, or a
//! PostgreSQL schema of its own from `TEST_DATABASE_URL`, dropped afterwards), the application
//! bound to port 0, and a `reqwest` client pointed at it.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use actix_web::web::Data;
use chrono::{DateTime, Utc};
use ingest::app::{AppState, Application};
use ingest::settings::Settings;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE};
use reqwest::{Body, Method, RequestBuilder, Response};
use serde_json::Value;
use traffic_model::classification::{Classification, Label, LevelOfService};
use traffic_store::{DatabaseUrl, Event, StoreConfig};

use traffic_store::test_util::TestDatabase;

/// The database a test runs on; every test runs once on each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// False, after saying so, when this backend cannot be tested here: PostgreSQL without
    /// `TEST_DATABASE_URL`.
    pub fn available(self) -> bool {
        match self {
            Backend::Sqlite => true,
            Backend::Postgres => {
                let set = std::env::var("TEST_DATABASE_URL").is_ok_and(|url| !url.is_empty());
                if !set {
                    eprintln!(
                        "skipped: TEST_DATABASE_URL is not set, PostgreSQL API tests did not run"
                    );
                }
                set
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A fresh, empty database (`traffic_store::test_util`).
pub struct TestDb(TestDatabase);

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => Self(TestDatabase::sqlite()),
            Backend::Postgres => Self(
                TestDatabase::postgres()
                    .await
                    .expect("TEST_DATABASE_URL is set for PostgreSQL tests"),
            ),
        }
    }

    pub fn url(&self) -> &DatabaseUrl {
        self.0.url()
    }
}

/// A database that cannot be reached until [`Outage::end`]: SQLite in a directory that does
/// not exist yet; PostgreSQL on a closed port that later forwards to the real server.
pub struct Outage {
    /// Keeps the SQLite directory and the PostgreSQL schema until the test ends.
    _db: TestDb,
    url: DatabaseUrl,
    restore: Restore,
}

enum Restore {
    CreateDir(PathBuf),
    Forward { port: u16, upstream: String },
}

impl Outage {
    pub async fn new(backend: Backend) -> Self {
        let db = TestDb::new(backend).await;
        let (url, restore) = match db.url() {
            DatabaseUrl::Sqlite(_) => {
                let missing = db.0.dir().join("not-yet");
                (
                    DatabaseUrl::Sqlite(missing.join("events.db")),
                    Restore::CreateDir(missing),
                )
            }
            DatabaseUrl::Postgres(url) => {
                let mut parsed = reqwest::Url::parse(secrecy::ExposeSecret::expose_secret(url))
                    .expect("TEST_DATABASE_URL is a URL");
                let host = parsed.host_str().expect("TEST_DATABASE_URL names a host");
                let upstream = format!("{host}:{}", parsed.port().unwrap_or(5432));
                let port = free_port();
                parsed.set_host(Some("127.0.0.1")).expect("set host");
                parsed.set_port(Some(port)).expect("set port");
                (
                    DatabaseUrl::Postgres(parsed.to_string().into()),
                    Restore::Forward { port, upstream },
                )
            }
        };
        Self {
            _db: db,
            url,
            restore,
        }
    }

    /// Connects lazily (no migrations possible) and gives up on a connection quickly.
    pub fn store_config(&self) -> StoreConfig {
        let mut config = StoreConfig::new(self.url.clone());
        config.acquire_timeout = Duration::from_millis(500);
        config
    }

    /// Makes the database reachable (still empty and unmigrated).
    pub async fn end(&self) {
        match &self.restore {
            Restore::CreateDir(dir) => std::fs::create_dir_all(dir).expect("create the directory"),
            Restore::Forward { port, upstream } => {
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", *port))
                    .await
                    .expect("the reserved port is still free");
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    while let Ok((mut inbound, _)) = listener.accept().await {
                        let upstream = upstream.clone();
                        tokio::spawn(async move {
                            if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await
                            {
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound)
                                    .await;
                            }
                        });
                    }
                });
            }
        }
    }
}

/// A reading of `sensor` lane 1 observed at `at`: free-flowing, or a stop-and-go jam.
pub fn lane_reading(sensor: &str, at: DateTime<Utc>, jammed: bool) -> Value {
    let (count, speed, occupancy) = if jammed {
        (30, 8.0, 45.0)
    } else {
        (10, 100.0, 5.0)
    };
    serde_json::json!({
        "sensor_id": sensor, "lane": 1, "observed_at": at.to_rfc3339(),
        "vehicle_count": count, "avg_speed_kmh": speed, "occupancy_pct": occupancy,
        "speed_limit_kmh": 100,
    })
}

/// A loopback port nothing listens on (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The service's settings for tests, over `store`: port 0, two HTTP workers, and
/// classification paused so that tests drive the queue themselves (see `with_classifier`).
pub fn settings(store: StoreConfig) -> Settings {
    let mut settings = Settings::new(store);
    settings.http.bind = "127.0.0.1:0".parse().expect("address");
    settings.http.workers = 2;
    settings.classify.workers = 0;
    settings.classify.batch_size = 500;
    settings.classify.gather = Duration::from_millis(100);
    settings
}

/// Runs the in-process classifier with two workers.
pub fn with_classifier(settings: &mut Settings) {
    settings.classify.workers = 2;
    settings.classify.poll_interval = Duration::from_secs(1);
}

/// The application, running on its own port, over a database of its own.
pub struct TestApp {
    pub address: SocketAddr,
    pub client: reqwest::Client,
    pub state: Data<AppState>,
    _db: Option<TestDb>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Spawns the application with settings changed by `configure`.
    pub async fn spawn_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> Self {
        let db = TestDb::new(backend).await;
        let mut settings = settings(StoreConfig::new(db.url().clone()));
        configure(&mut settings);
        Self::start(settings, Some(db)).await
    }

    /// Builds the application and runs it in the background.
    pub async fn start(settings: Settings, db: Option<TestDb>) -> Self {
        let app = Application::build(settings)
            .await
            .expect("the application starts");
        let address = app.address();
        let state = app.state();
        tokio::spawn(app.run_until_stopped());
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client");
        Self {
            address,
            client,
            state,
            _db: db,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.request(Method::POST, path)
    }

    /// Sends `body` as it is to `path` with `method`, labelled `media_type`.
    pub async fn send_as(
        &self,
        method: Method,
        path: &str,
        media_type: &str,
        body: impl Into<Body>,
    ) -> Response {
        send(
            self.request(method, path)
                .header(CONTENT_TYPE, media_type)
                .body(body),
        )
        .await
    }

    /// POSTs `body` as it is, labelled `media_type`.
    pub async fn post_as(&self, path: &str, media_type: &str, body: impl Into<Body>) -> Response {
        self.send_as(Method::POST, path, media_type, body).await
    }

    /// POSTs `body` as `application/json`.
    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        send(self.post(path).json(body)).await
    }

    /// GET `path`, expecting 200, as text.
    pub async fn get_text(&self, path: &str) -> String {
        let response = send(self.get(path)).await;
        assert_eq!(response.status().as_u16(), 200, "GET {path}");
        response.text().await.expect("a text body")
    }

    pub async fn get_ok(&self, path: &str) -> Value {
        json(send(self.get(path)).await, 200).await
    }

    /// Asserts that GET `path` (with its query) is refused as an invalid query naming exactly
    /// `fields`.
    pub async fn assert_invalid_query(&self, path: &str, fields: &[&str]) {
        let body = problem(send(self.get(path)).await, 400, "invalid-query").await;
        assert_eq!(error_fields(&body), fields, "GET {path}");
    }

    /// Stores one reading, expecting 201, and returns the event.
    pub async fn create(&self, reading: &Value) -> Value {
        json(self.post_json("/v1/events", reading).await, 201).await
    }

    /// Stores one reading, expecting 201, and classifies it `label` as a worker would (see
    /// [`TestApp::classify`]); returns the event as stored.
    pub async fn create_classified(&self, reading: &Value, label: Label) -> Value {
        let event = self.create(reading).await;
        self.classify(event["id"].as_i64().expect("id"), label)
            .await;
        event
    }

    /// Requeues event `id` for classification, expecting 202, and returns the event.
    pub async fn requeue(&self, id: i64) -> Value {
        json(
            send(self.post(&format!("/v1/events/{id}/classify"))).await,
            202,
        )
        .await
    }

    /// Gives sensor `id` (an id that needs no escaping in a path) its first metadata, expecting
    /// `201`.
    pub async fn put_sensor(&self, id: &str, metadata: Value) {
        let path = format!("/v1/sensors/{id}");
        let response = self
            .send_as(Method::PUT, &path, "application/json", metadata.to_string())
            .await;
        assert_eq!(response.status(), 201, "PUT {path}");
    }

    /// Stores readings with one batch request, expecting all to be accepted.
    pub async fn create_many(&self, readings: &[Value]) {
        let result = json(
            self.post_json("/v1/events/batch", &Value::from(readings.to_vec()))
                .await,
            200,
        )
        .await;
        assert_eq!(result["accepted"], readings.len(), "{result}");
    }

    /// Every event, newest first, walked with the API's cursor.
    pub async fn list_all(&self, query: &[(&str, &str)]) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut params: Vec<(&str, &str)> = query.to_vec();
            params.push(("limit", "1000"));
            if let Some(cursor) = &cursor {
                params.push(("cursor", cursor));
            }
            let page = json(send(self.get("/v1/events").query(&params)).await, 200).await;
            items.extend(page["items"].as_array().expect("items").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return items,
            }
        }
    }

    /// Rows in the database, in any status, counted by the store.
    pub async fn row_count(&self) -> u64 {
        let counts = self.state.store.counts_by_status().await.expect("counts");
        counts.pending + counts.processing + counts.classified + counts.failed
    }

    /// Claims every due event as a worker would, leaving them `processing`.
    pub async fn claim_all(&self, owner: &str) -> Vec<Event> {
        self.state
            .store
            .claim(owner, 10_000, Duration::from_secs(600))
            .await
            .expect("claim")
    }

    /// Classifies every due event with `label`, as a worker would.
    pub async fn classify_all(&self, label: Label) {
        let claimed = self.claim_all("test-worker-all").await;
        let results = claimed
            .iter()
            .map(|e| (e.id, classification(label)))
            .collect();
        self.state
            .store
            .complete_many("test-worker-all", results)
            .await
            .expect("complete");
    }

    /// Classifies every due event with the real rules (no history), as a worker would.
    pub async fn classify_all_with_rules(&self) {
        let claimed = self.claim_all("test-worker-rules").await;
        let config = traffic_model::rules::RulesConfig::default();
        let results = claimed
            .iter()
            .map(|e| {
                (
                    e.id,
                    traffic_model::rules::classify(&e.reading, &[], &config),
                )
            })
            .collect();
        self.state
            .store
            .complete_many("test-worker-rules", results)
            .await
            .expect("complete");
    }

    /// Classifies event `id` with `label` through the store's claim and complete, as a worker
    /// does; every other claimed event is released untouched.
    pub async fn classify(&self, id: i64, label: Label) {
        let owner = format!("test-worker-{id}");
        let claimed = self.claim_all(&owner).await;
        assert!(
            claimed.iter().any(|e| e.id == id),
            "event {id} was not due for classification"
        );
        for event in claimed {
            if event.id == id {
                let done = self
                    .state
                    .store
                    .complete_many(&owner, vec![(id, classification(label))])
                    .await
                    .expect("complete");
                assert_eq!(done, vec![id], "the lease on {id} was lost");
            } else {
                self.state
                    .store
                    .release(event.id, &owner)
                    .await
                    .expect("release");
            }
        }
    }
}

pub fn classification(label: Label) -> Classification {
    Classification {
        label,
        level_of_service: Some(LevelOfService::E),
        flow_veh_h_lane: 1800.0,
        density_veh_km_lane: Some(25.0),
        confidence: 0.9,
        flags: Vec::new(),
        reasons: vec!["set by the API tests".into()],
        classifier_version: "api-tests".into(),
    }
}

/// Sends a request, failing the test only if no response arrives.
pub async fn send(request: RequestBuilder) -> Response {
    request.send().await.expect("a response")
}

/// Status, media type (without parameters) and body text of a response.
pub async fn parts(response: Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let media_type = content_type(&response);
    let text = response.text().await.expect("response body");
    (status, media_type, text)
}

pub fn content_type(response: &Response) -> String {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Asserts a JSON response with `status` and returns its body.
pub async fn json(response: Response, status: u16) -> Value {
    let (got, media_type, text) = parts(response).await;
    assert_eq!(got, status, "unexpected status; body: {text}");
    assert_eq!(media_type, "application/json", "body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Asserts an RFC 9457 problem with `status` and type `/problems/{kind}`; returns it.
pub async fn problem(response: Response, status: u16, kind: &str) -> Value {
    let (got, media_type, text) = parts(response).await;
    assert_eq!(got, status, "unexpected status; body: {text}");
    assert_eq!(media_type, "application/problem+json", "body: {text}");
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    assert_eq!(body["type"], format!("/problems/{kind}"), "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert!(
        body["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    assert!(body["detail"].is_string(), "{body}");
    body
}

/// The `field` of every entry of a problem's `errors`, sorted.
pub fn error_fields(problem: &Value) -> Vec<String> {
    let mut fields: Vec<String> = problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {problem}"))
        .iter()
        .map(|e| e["field"].as_str().expect("field").to_owned())
        .collect();
    fields.sort();
    fields
}

pub use traffic_store::test_util::{
    minute, reading_json as reading, reading_json_at as reading_at, t0,
};

pub const NDJSON: &str = "application/x-ndjson";

/// Readings as NDJSON, one per line.
pub fn ndjson(readings: &[Value]) -> String {
    readings
        .iter()
        .map(|r| format!("{r}\n"))
        .collect::<String>()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// Adds `Content-Type` and `Content-Encoding` to a request of `body`, already encoded.
pub fn encoded(
    request: RequestBuilder,
    media_type: &str,
    encoding: &str,
    body: impl Into<Body>,
) -> RequestBuilder {
    request
        .header(CONTENT_TYPE, media_type)
        .header(CONTENT_ENCODING, encoding)
        .body(body)
}

/// Adds `Content-Type` and `Content-Encoding: gzip` to a request of gzip-compressed `body`.
pub fn gzipped(request: RequestBuilder, media_type: &str, body: &[u8]) -> RequestBuilder {
    encoded(request, media_type, "gzip", gzip(body))
}

/// Polls `check` every 20 ms until it holds, for at most `within`.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

//! A running `ingest` with an HTTP client for its API, and a running `mcp-classifier serve`.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use reqwest::{Method, Response, StatusCode};
use serde_json::Value;

use crate::{Proc, TestDatabase, binaries, free_port};

/// How long a process may take to start answering (migrations included).
const START_WITHIN: Duration = Duration::from_secs(30);

/// What every `ingest` of the suite gets unless a test says otherwise: its database, a small
/// pool (several processes share one PostgreSQL server), and a 1 s safety-net poll so that
/// retries whose backoff has run out are picked up promptly (nothing else wakes the workers
/// for them).
fn defaults(db: &TestDatabase) -> Vec<(String, String)> {
    let url = db.database_url();
    [
        ("DATABASE_URL", url.as_str()),
        ("DATABASE_MAX_CONNECTIONS", "8"),
        ("CLASSIFY_POLL_S", "1"),
        ("INGEST_HTTP_WORKERS", "2"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("reqwest client")
}

pub struct Ingest {
    proc: Proc,
    base: String,
    http: reqwest::Client,
    // Dropped after `proc` (field order): the process's working directory and log, and the
    // database when it is the ingest's own.
    _dir: tempfile::TempDir,
    _db: Option<TestDatabase>,
}

impl Ingest {
    /// Starts `ingest` on `db` with `env` on top of the suite's defaults, and waits until
    /// `GET /v1/ready` answers 200 (listening, database reachable and migrated).
    pub async fn start(name: &str, db: &TestDatabase, env: &[(&str, &str)]) -> Self {
        let binaries = binaries();
        for attempt in 1..=3 {
            let dir = tempfile::tempdir().expect("temp dir");
            let bind = format!("127.0.0.1:{}", free_port());
            let mut vars = defaults(db);
            vars.push(("INGEST_BIND".into(), bind.clone()));
            vars.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
            let vars: Vec<(&str, &str)> =
                vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let proc = Proc::spawn(name, &binaries.ingest, &[], &vars, dir.path());
            let mut ingest = Self {
                proc,
                base: format!("http://{bind}"),
                http: http_client(),
                _dir: dir,
                _db: None,
            };
            match ingest.wait_ready().await {
                Ok(()) => return ingest,
                Err(log) if attempt < 3 && log.contains("in use") => {
                    eprintln!("{name}: {bind} was taken; retrying on another port");
                }
                Err(log) => panic!("{name} did not become ready:\n{log}"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// `ingest` on `db` without classification workers (`CLASSIFY_WORKERS=0`), `env` on top: what
    /// it accepts stays pending, for tests of what it accepts and refuses.
    pub async fn storing_only(db: &TestDatabase, env: &[(&str, &str)]) -> Self {
        let vars: Vec<(&str, &str)> = [("CLASSIFY_WORKERS", "0")]
            .into_iter()
            .chain(env.iter().copied())
            .collect();
        Self::start("ingest", db, &vars).await
    }

    /// The same on a fresh SQLite database of its own, removed when the ingest is dropped.
    pub async fn storing_only_on_sqlite(env: &[(&str, &str)]) -> Self {
        let db = TestDatabase::sqlite();
        let mut ingest = Self::storing_only(&db, env).await;
        ingest._db = Some(db);
        ingest
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_WITHIN;
        loop {
            if let Some(status) = self.proc.exited() {
                return Err(format!(
                    "exited with {status} before it was ready; its log:\n{}",
                    self.proc.log()
                ));
            }
            if let Ok(response) = self.http.get(self.url("/v1/ready")).send().await
                && response.status() == StatusCode::OK
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "not ready after {START_WITHIN:?}; its log:\n{}",
                    self.proc.log_tail(40)
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn proc(&self) -> &Proc {
        &self.proc
    }

    pub fn proc_mut(&mut self) -> &mut Proc {
        &mut self.proc
    }

    /// `method path`, with `body` as JSON if given; fails the test if no answer arrives.
    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Response {
        let mut request = self.http.request(method.clone(), self.url(path));
        if let Some(body) = body {
            request = request.json(body);
        }
        request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path} to {}: {e}", self.proc.name()))
    }

    /// `method path` as `send` does → (status, JSON body).
    async fn send_json(&self, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        let response = self.send(method.clone(), path, body).await;
        let status = response.status().as_u16();
        let body = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: not a JSON body ({e})"));
        (status, body)
    }

    /// `method path` as `send` does, asserting `expected` → the JSON body.
    async fn expect_json(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        expected: u16,
    ) -> Value {
        let (status, body) = self.send_json(method.clone(), path, body).await;
        assert_eq!(status, expected, "{method} {path}: {body}");
        body
    }

    /// `POST /v1/events` → (status, body).
    pub async fn post_reading(&self, reading: &Value) -> (u16, Value) {
        self.send_json(Method::POST, "/v1/events", Some(reading))
            .await
    }

    /// `POST /v1/events` of a new reading: asserts 201 and returns the event's id.
    pub async fn create(&self, reading: &Value) -> i64 {
        let body = self
            .expect_json(Method::POST, "/v1/events", Some(reading), 201)
            .await;
        body["id"].as_i64().expect("the event has an id")
    }

    /// `PUT /v1/sensors/{id}` (an id that needs no escaping in a path): asserts 200 or 201.
    pub async fn put_sensor(&self, id: &str, metadata: &Value) {
        let response = self
            .http
            .put(self.url(&format!("/v1/sensors/{id}")))
            .json(metadata)
            .send()
            .await
            .expect("PUT the sensor");
        let status = response.status().as_u16();
        assert!(
            status == 200 || status == 201,
            "PUT /v1/sensors/{id}: {status} {}",
            response.text().await.unwrap_or_default()
        );
    }

    /// `POST /v1/events/batch` (a JSON array): asserts 200 with every reading accepted.
    pub async fn create_batch(&self, readings: &[Value]) {
        let batch = Value::from(readings.to_vec());
        let body = self
            .expect_json(Method::POST, "/v1/events/batch", Some(&batch), 200)
            .await;
        assert_eq!(
            body["accepted"].as_u64(),
            Some(readings.len() as u64),
            "every reading of the batch is stored: {body}"
        );
    }

    /// `GET /v1/events/{id}` (asserting 200).
    pub async fn event(&self, id: i64) -> Value {
        self.expect_json(Method::GET, &format!("/v1/events/{id}"), None, 200)
            .await
    }

    /// Polls `GET /v1/events/{id}` until its status is `status`.
    pub async fn wait_for_status(&self, id: i64, status: &str, timeout: Duration) -> Value {
        crate::eventually(&format!("event {id} {status}"), timeout, || async {
            let event = self.event(id).await;
            if event["status"] == status {
                Ok(event)
            } else {
                Err(event.to_string())
            }
        })
        .await
    }

    /// `POST /v1/events/{id}/classify` → (status, body).
    pub async fn requeue(&self, id: i64) -> (u16, Value) {
        self.send_json(Method::POST, &format!("/v1/events/{id}/classify"), None)
            .await
    }

    /// `GET /v1/ready` (asserting 200).
    pub async fn ready(&self) -> Value {
        self.expect_json(Method::GET, "/v1/ready", None, 200).await
    }

    /// `GET /metrics` text.
    pub async fn metrics(&self) -> String {
        let response = self.send(Method::GET, "/metrics", None).await;
        assert_eq!(response.status().as_u16(), 200, "GET /metrics");
        response.text().await.expect("metrics text")
    }

    /// SIGTERM, then the exit status within `timeout` (panics if it does not exit).
    pub fn terminate(&mut self, timeout: Duration) -> std::process::ExitStatus {
        self.proc.signal("-TERM");
        let exited = self.proc.wait_for_exit(timeout);
        exited.unwrap_or_else(|| {
            panic!(
                "{} did not exit within {timeout:?} of SIGTERM; its log:\n{}",
                self.proc.name(),
                self.proc.log_tail(40)
            )
        })
    }
}

/// The sum of the samples of metric `name` whose labels include every pair of `labels`
/// (0 when there is none: a labelled counter appears only once incremented).
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, series_labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if series_name != name {
                return None;
            }
            let matches = labels.iter().all(|(key, expected)| {
                series_labels
                    .split(',')
                    .any(|pair| pair == format!("{key}=\"{expected}\""))
            });
            matches.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// `mcp-classifier serve` on a given loopback port.
pub struct Classifier {
    proc: Proc,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Classifier {
    /// Starts `mcp-classifier serve --bind 127.0.0.1:PORT` with `env` and waits until it accepts
    /// connections.
    pub fn serve(port: u16, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let bind = format!("127.0.0.1:{port}");
        let mut proc = Proc::spawn(
            "mcp-classifier",
            &binaries().classifier,
            &["serve", "--bind", &bind],
            env,
            dir.path(),
        );
        let addr: SocketAddr = bind.parse().expect("socket address");
        let deadline = Instant::now() + START_WITHIN;
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Some(status) = proc.exited() {
                panic!(
                    "mcp-classifier serve exited with {status} before listening on {bind}:\n{}",
                    proc.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "mcp-classifier is not listening on {bind} after {START_WITHIN:?}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        Self {
            proc,
            port,
            _dir: dir,
        }
    }

    pub fn mcp_url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    pub fn proc(&self) -> &Proc {
        &self.proc
    }
}

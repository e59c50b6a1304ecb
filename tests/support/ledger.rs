//! A sustained ingest that keeps the client's own ledger: every request's answer and how long
//! it took, and every reading a `2xx` acknowledged, so a fault test can check each of them
//! against the database afterwards.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use traffic_store::test_util::t0;

use crate::{TestDatabase, eventually, reading};

/// Readings in each batch request; every other request is a single POST.
const BATCH: i64 = 10;

/// One reading: its sensor and its minute after `t0`.
pub type Key = (String, i64);

/// One request's answer as the client saw it.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status; 0 when no answer came (connection refused, reset, timed out).
    pub status: u16,
    pub retry_after: Option<String>,
    pub problem_type: Option<String>,
    pub elapsed: Duration,
    pub at: Instant,
}

/// Requests posted by `clients` tasks to `bases` (round robin) until [`Load::finish`].
pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<(Vec<Answer>, Vec<Key>)>>,
}

impl Load {
    /// Client `c` posts readings of sensor `{prefix}-{c}`, minute after minute, alternately one
    /// by one and in batches of 10, pausing `pace` between requests. Each request gives up
    /// after `timeout` (recorded as status 0).
    pub fn start(
        prefix: &str,
        bases: &[String],
        clients: usize,
        pace: Duration,
        timeout: Duration,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let http = client(timeout);
        let tasks = (0..clients)
            .map(|c| {
                let sensor = format!("{prefix}-{c}");
                let bases = bases.to_vec();
                let (stop, http) = (Arc::clone(&stop), http.clone());
                tokio::spawn(async move {
                    let (mut answers, mut acknowledged) = (Vec::new(), Vec::new());
                    let mut minute = 0;
                    for n in 0.. {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let base = &bases[(n + c) % bases.len()];
                        let count = if n % 2 == 0 { 1 } else { BATCH };
                        let keys: Vec<Key> = (minute..minute + count)
                            .map(|m| (sensor.clone(), m))
                            .collect();
                        minute += count;
                        let (answer, stored) = post(&http, base, &keys).await;
                        answers.push(answer);
                        acknowledged.extend(stored);
                        tokio::time::sleep(pace).await;
                    }
                    (answers, acknowledged)
                })
            })
            .collect();
        Self { stop, tasks }
    }

    /// One client reading `paths` in turn from `bases`, pausing `pace` between requests: the
    /// read side under the same fault. Its ledger has answers and no acknowledged readings.
    pub fn reads(bases: &[String], paths: &[&str], pace: Duration, timeout: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let http = client(timeout);
        let urls: Vec<String> = bases
            .iter()
            .flat_map(|base| paths.iter().map(move |path| format!("{base}{path}")))
            .collect();
        let task = {
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for url in urls.iter().cycle() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    answers.push(answer_of(http.get(url)).await.0);
                    tokio::time::sleep(pace).await;
                }
                (answers, Vec::new())
            })
        };
        Self {
            stop,
            tasks: vec![task],
        }
    }

    /// Stops the clients after their request in flight, and gathers their ledgers.
    pub async fn finish(self) -> Ledger {
        self.stop.store(true, Ordering::Relaxed);
        let mut ledger = Ledger::default();
        for task in self.tasks {
            let (answers, acknowledged) = task.await.expect("a load client");
            ledger.answers.extend(answers);
            ledger.acknowledged.extend(acknowledged);
        }
        ledger.answers.sort_by_key(|a| a.at);
        ledger
    }
}

fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .expect("reqwest client")
}

/// POSTs the readings of `keys`: the answer, and the keys a `2xx` acknowledged.
async fn post(http: &reqwest::Client, base: &str, keys: &[Key]) -> (Answer, Vec<Key>) {
    let bodies: Vec<Value> = keys.iter().map(|(s, m)| reading(s, *m)).collect();
    let request = if let [one] = bodies.as_slice() {
        http.post(format!("{base}/v1/events")).json(one)
    } else {
        http.post(format!("{base}/v1/events/batch")).json(&bodies)
    };
    let (answer, body) = answer_of(request).await;
    if !(200..300).contains(&answer.status) {
        return (answer, Vec::new());
    }
    let rejected: BTreeSet<u64> = body["rejected"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["index"].as_u64())
        .collect();
    let stored = keys
        .iter()
        .enumerate()
        .filter(|(i, _)| !rejected.contains(&(*i as u64)))
        .map(|(_, key)| key.clone())
        .collect();
    (answer, stored)
}

/// Sends `request`: the answer as the client saw it, and its JSON body (`Null` if none).
async fn answer_of(request: reqwest::RequestBuilder) -> (Answer, Value) {
    let started = Instant::now();
    let response = request.send().await;
    let mut answer = Answer {
        status: 0,
        retry_after: None,
        problem_type: None,
        elapsed: Duration::ZERO,
        at: started,
    };
    let Ok(response) = response else {
        answer.elapsed = started.elapsed();
        return (answer, Value::Null);
    };
    answer.status = response.status().as_u16();
    answer.retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Value = response.json().await.unwrap_or(Value::Null);
    answer.elapsed = started.elapsed();
    answer.problem_type = body["type"].as_str().map(str::to_owned);
    (answer, body)
}

#[derive(Debug, Default)]
pub struct Ledger {
    /// Every request, in the order they were sent.
    pub answers: Vec<Answer>,
    /// Every reading a `2xx` acknowledged.
    pub acknowledged: Vec<Key>,
}

impl Ledger {
    /// Requests per status.
    pub fn statuses(&self) -> BTreeMap<u16, usize> {
        let mut counts = BTreeMap::new();
        for answer in &self.answers {
            *counts.entry(answer.status).or_default() += 1;
        }
        counts
    }

    /// The longest any request waited for its answer.
    pub fn slowest(&self) -> Duration {
        self.answers
            .iter()
            .map(|a| a.elapsed)
            .max()
            .unwrap_or_default()
    }

    /// Asserts that every answer is a `2xx`, or one of `refusals` (status and problem type)
    /// with `Retry-After`, and that none took longer than `within`.
    pub fn assert_fast_failures(&self, refusals: &[(u16, &str)], within: Duration) {
        for answer in &self.answers {
            let ok = (200..300).contains(&answer.status)
                || (answer.retry_after.is_some()
                    && refusals.iter().any(|(status, kind)| {
                        answer.status == *status && answer.problem_type.as_deref() == Some(kind)
                    }));
            assert!(
                ok,
                "an answer outside 2xx and {refusals:?} with Retry-After: {answer:?}\nall: {:?}",
                self.statuses()
            );
            assert!(
                answer.elapsed <= within,
                "an answer took longer than {within:?}: {answer:?}"
            );
        }
    }

    /// Asserts that every request was answered `2xx`.
    pub fn assert_all_acknowledged(&self) {
        let statuses = self.statuses();
        assert!(
            statuses.keys().all(|s| (200..300).contains(s)),
            "answers other than 2xx: {statuses:?}"
        );
    }

    /// Waits up to `timeout` until every acknowledged reading is in `db` and classified;
    /// panics naming the first missing ones.
    pub async fn assert_all_classified(&self, db: &TestDatabase, timeout: Duration) {
        assert!(!self.acknowledged.is_empty(), "no reading was acknowledged");
        let epoch = if db.postgres_schema().is_some() {
            "extract(epoch FROM observed_at)::bigint"
        } else {
            "CAST(strftime('%s', observed_at) AS INTEGER)"
        };
        let sql = format!(
            "SELECT sensor_id || ' ' || (({epoch} - {}) / 60) AS v FROM event_states \
             WHERE status = 'classified'",
            t0().timestamp()
        );
        let wanted: BTreeSet<String> = self
            .acknowledged
            .iter()
            .map(|(s, m)| format!("{s} {m}"))
            .collect();
        let started = Instant::now();
        eventually("every acknowledged reading classified", timeout, || async {
            let classified: BTreeSet<String> =
                db.strings(&sql).await.into_iter().flatten().collect();
            let missing: Vec<&String> = wanted.difference(&classified).take(5).collect();
            if missing.is_empty() {
                eprintln!(
                    "{} acknowledged readings classified {:?} after the load",
                    wanted.len(),
                    started.elapsed()
                );
                Ok(())
            } else {
                Err(format!(
                    "{} of {} not classified yet, e.g. {missing:?}; {:?}",
                    wanted.difference(&classified).count(),
                    wanted.len(),
                    db.statuses().await
                ))
            }
        })
        .await;
    }
}

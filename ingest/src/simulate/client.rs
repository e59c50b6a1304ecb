//! The REST API as the simulator uses it: the key on every request, readings one at a time
//! or in batches, and the reads its summary is made of. Answers are read as docs/api.md
//! documents them; `429` and `503` are waited out and retried, as the API advises.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{RequestBuilder, Response, StatusCode, Url};
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use service_kit::auth::{ExposeSecret, SecretString};
use traffic_model::series::Bucket;

use super::scenario::SimReading;

/// Longest a request may take, a batch of 10 000 readings included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Retries of a request answered `429` or `503`.
const RETRIES: u32 = 5;
/// Longest wait before a retry, whatever `Retry-After` says.
const LONGEST_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the ingest service at {url}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{what} at {url} answered {status}: {detail}")]
    Status {
        what: String,
        url: String,
        status: StatusCode,
        detail: String,
    },
    #[error("{what} at {url}: the answer is not what the API documents")]
    Answer {
        what: String,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{what} at {url}: the answer is not what the API documents")]
    Json {
        what: String,
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot encode the readings")]
    Encode(#[source] serde_json::Error),
    #[error("cannot set up the HTTP client")]
    Build(#[source] reqwest::Error),
}

impl ClientError {
    /// The service answered with a server error (5xx).
    pub fn is_server_error(&self) -> bool {
        matches!(self, ClientError::Status { status, .. } if status.is_server_error())
    }
}

/// What the API made of the readings of one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    pub stored: u64,
    pub duplicates: u64,
    pub rejected: u64,
}

/// `POST /v1/events/batch`'s answer.
#[derive(Deserialize)]
struct BatchAnswer {
    accepted: u64,
    duplicates: u64,
    rejected: Vec<IgnoredAny>,
}

/// A page of `GET /v1/events`: only what the simulator reads of it.
#[derive(Deserialize)]
struct EventPage {
    items: Vec<EventItem>,
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
struct EventItem {
    observed_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct Series {
    buckets: Vec<Bucket>,
}

/// One instant as the API's query parameters take it.
fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

pub struct Client {
    http: reqwest::Client,
    base: Url,
    key: Option<SecretString>,
}

impl Client {
    pub fn new(base: Url, key: Option<SecretString>) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("ingest-simulate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ClientError::Build)?;
        let key = key.filter(|k| !k.expose_secret().is_empty());
        Ok(Self { http, base, key })
    }

    /// The URL of `segments` under the base URL (each segment percent-encoded), with `query`.
    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Sends what `build` makes, with the key, again after `429` or `503` as long as retries
    /// last (the API stores a retried reading once).
    async fn execute(
        &self,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, reqwest::Error> {
        let mut attempt = 0;
        loop {
            let mut request = build();
            if let Some(key) = &self.key {
                request = request.header(AUTHORIZATION, format!("Bearer {}", key.expose_secret()));
            }
            let response = request.send().await?;
            let status = response.status();
            let busy = status == StatusCode::TOO_MANY_REQUESTS
                || status == StatusCode::SERVICE_UNAVAILABLE;
            if !busy || attempt >= RETRIES {
                return Ok(response);
            }
            let advised = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let backoff = Duration::from_millis(250 << attempt);
            tokio::time::sleep(advised.unwrap_or(backoff).min(LONGEST_WAIT)).await;
            attempt += 1;
        }
    }

    /// The error for an answer with an unexpected status, with the problem's `detail`.
    async fn unexpected(what: &str, url: &Url, response: Response) -> ClientError {
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let detail = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|problem| problem["detail"].as_str().map(str::to_owned))
            .unwrap_or_else(|| text.chars().take(200).collect());
        ClientError::Status {
            what: what.to_owned(),
            url: url.to_string(),
            status,
            detail,
        }
    }

    fn unreachable(url: &Url, source: reqwest::Error) -> ClientError {
        ClientError::Unreachable {
            url: url.to_string(),
            source,
        }
    }

    /// `GET /v1/health`: whether the service is there at all.
    pub async fn health(&self) -> Result<(), ClientError> {
        let url = self.url(&["v1", "health"], &[]);
        let response = self
            .execute(|| self.http.get(url.clone()))
            .await
            .map_err(|e| Self::unreachable(&self.base, e))?;
        if !response.status().is_success() {
            return Err(Self::unexpected("GET /v1/health", &url, response).await);
        }
        Ok(())
    }

    /// `PUT /v1/sensors/{id}`: the sensor's metadata, whole.
    pub async fn put_sensor(
        &self,
        id: &str,
        metadata: &serde_json::Value,
    ) -> Result<(), ClientError> {
        let url = self.url(&["v1", "sensors", id], &[]);
        let body = metadata.to_string();
        let response = self
            .execute(|| {
                self.http
                    .put(url.clone())
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.clone())
            })
            .await
            .map_err(|e| Self::unreachable(&url, e))?;
        match response.status() {
            StatusCode::OK | StatusCode::CREATED => Ok(()),
            _ => Err(Self::unexpected(&format!("PUT /v1/sensors/{id}"), &url, response).await),
        }
    }

    /// Sends `readings`: one `POST /v1/events` when `single`, else one `POST /v1/events/batch`.
    pub async fn post_readings(
        &self,
        readings: &[SimReading],
        single: bool,
    ) -> Result<Outcome, ClientError> {
        let (path, body) = match (single, readings) {
            (true, [reading]) => ("events", serde_json::to_vec(reading)),
            _ => ("batch", serde_json::to_vec(readings)),
        };
        let body = body.map_err(ClientError::Encode)?;
        let (url, what) = if path == "events" {
            (self.url(&["v1", "events"], &[]), "POST /v1/events")
        } else {
            (
                self.url(&["v1", "events", "batch"], &[]),
                "POST /v1/events/batch",
            )
        };
        let response = self
            .execute(|| {
                self.http
                    .post(url.clone())
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.clone())
            })
            .await
            .map_err(|e| Self::unreachable(&url, e))?;
        let status = response.status();
        if path == "events" {
            let one = |stored, duplicates, rejected| Outcome {
                stored,
                duplicates,
                rejected,
            };
            return match status {
                StatusCode::CREATED => Ok(one(1, 0, 0)),
                StatusCode::OK => Ok(one(0, 1, 0)),
                StatusCode::UNPROCESSABLE_ENTITY => Ok(one(0, 0, 1)),
                _ => Err(Self::unexpected(what, &url, response).await),
            };
        }
        if status != StatusCode::OK {
            return Err(Self::unexpected(what, &url, response).await);
        }
        let answer: BatchAnswer = Self::decode(what, &url, response).await?;
        Ok(Outcome {
            stored: answer.accepted,
            duplicates: answer.duplicates,
            rejected: answer.rejected.len() as u64,
        })
    }

    async fn decode<T: DeserializeOwned>(
        what: &str,
        url: &Url,
        response: Response,
    ) -> Result<T, ClientError> {
        let bytes = response
            .bytes()
            .await
            .map_err(|source| ClientError::Answer {
                what: what.to_owned(),
                url: url.to_string(),
                source,
            })?;
        serde_json::from_slice(&bytes).map_err(|source| ClientError::Json {
            what: what.to_owned(),
            url: url.to_string(),
            source,
        })
    }

    /// GET `segments` with `query`, expecting `200` and JSON; `None` on `404`.
    async fn get<T: DeserializeOwned>(
        &self,
        what: &str,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<Option<T>, ClientError> {
        let url = self.url(segments, query);
        let response = self
            .execute(|| self.http.get(url.clone()))
            .await
            .map_err(|e| Self::unreachable(&url, e))?;
        match response.status() {
            StatusCode::OK => Self::decode(what, &url, response).await.map(Some),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(Self::unexpected(what, &url, response).await),
        }
    }

    /// Whether any reading observed in `[from, to)` still waits for its classification.
    pub async fn queued(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<bool, ClientError> {
        for status in ["pending", "processing"] {
            let query = [
                ("status", status.to_owned()),
                ("from", stamp(from)),
                ("to", stamp(to)),
                ("limit", "1".to_owned()),
            ];
            let page: Option<EventPage> = self
                .get("GET /v1/events", &["v1", "events"], &query)
                .await?;
            if page.is_some_and(|p| !p.items.is_empty()) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The buckets of sensor `id`'s series over readings starting in `[from, to)`, of one
    /// lane or all, in local days (the fewest buckets); empty for an unknown sensor.
    pub async fn series(
        &self,
        id: &str,
        lane: Option<u8>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Bucket>, ClientError> {
        let mut query = vec![
            ("from", stamp(from)),
            ("to", stamp(to)),
            ("bucket", "1d".to_owned()),
        ];
        if let Some(lane) = lane {
            query.push(("lane", lane.to_string()));
        }
        let what = "GET /v1/sensors/{id}/series";
        let series: Option<Series> = self
            .get(what, &["v1", "sensors", id, "series"], &query)
            .await?;
        Ok(series.map(|s| s.buckets).unwrap_or_default())
    }

    /// The earliest reading of sensor `id` observed in `[from, to)` that the classifier
    /// labelled `congested`.
    pub async fn first_congested(
        &self,
        id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, ClientError> {
        let mut earliest = None;
        let mut cursor: Option<String> = None;
        loop {
            let mut query = vec![
                ("sensor_id", id.to_owned()),
                ("label", "congested".to_owned()),
                ("from", stamp(from)),
                ("to", stamp(to)),
                ("limit", "1000".to_owned()),
            ];
            if let Some(cursor) = cursor.take() {
                query.push(("cursor", cursor));
            }
            let Some(page) = self
                .get::<EventPage>("GET /v1/events", &["v1", "events"], &query)
                .await?
            else {
                return Ok(earliest);
            };
            // Newest first: the page's last item is its earliest.
            if let Some(last) = page.items.last() {
                earliest = Some(last.observed_at);
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(earliest),
            }
        }
    }
}

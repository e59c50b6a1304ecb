//! Cached answers of the read endpoints, in Redis, shared by every replica and never stale
//! after a write: a view's key holds the version of what it is made of ([`versions`]), which
//! every acknowledged write bumps before its acknowledgement. Entries expire after a TTL, which
//! bounds what an invalidation lost to a Redis failure could cost; views that depend on the
//! clock (ages, "now") get a short one.
//!
//! Every answer, cached or not, carries a weak `ETag` (a hash of its body) and `X-Cache: hit`
//! or `miss`; a request whose `If-None-Match` names it gets `304`. Without Redis (or while it
//! fails) each read goes to the database, with the same headers.

mod settled;
pub mod versions;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use actix_web::body::to_bytes;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, ETAG, HeaderName, HeaderValue, IF_NONE_MATCH, LINK};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use fred::prelude::{Expiration, KeysInterface, Value};
use prometheus::IntCounterVec;
use traffic_model::reading::{Reading, SensorId};

pub use self::versions::Scope;
use self::versions::Versions;
use crate::problem::{self, Problem};
use crate::redis::Redis;

const X_CACHE: HeaderName = HeaderName::from_static("x-cache");
/// Bodies larger than this are served but not stored (a month of minutes as CSV, say).
const MAX_ENTRY_BYTES: usize = 4 * 1024 * 1024;

/// How long a stored view may be served, and when a series bucket is settled.
#[derive(Debug, Clone, Copy)]
pub struct CacheSettings {
    /// Views that only writes change.
    pub stored: Duration,
    /// Views that also change with the clock: the state "now", ages, windows ending now.
    pub clock: Duration,
    /// How long after its end a series bucket is settled: only late writes change it then
    /// (writes whose reading started more than half this long before the writer's clock, so
    /// replicas' clocks may disagree by up to half of it).
    pub settled: Duration,
}

/// What a write wrote or classified: each sensor, with the start of its earliest reading.
#[derive(Debug, Default)]
pub struct Written(BTreeMap<SensorId, DateTime<Utc>>);

impl Written {
    pub fn of<'a>(readings: impl IntoIterator<Item = &'a Reading>) -> Self {
        let mut earliest = BTreeMap::new();
        for reading in readings {
            let start = reading.start();
            let at = earliest.entry(reading.sensor_id().clone()).or_insert(start);
            *at = (*at).min(start);
        }
        Self(earliest)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One read's answer, as the cache knows it.
pub struct View {
    /// Which writes make it out of date.
    pub scope: Scope,
    /// What tells it from the other views of its scope: path, query and representation.
    pub key: String,
    /// Whether the clock changes it too.
    pub clock: bool,
}

impl View {
    /// The view of `request` as it stands (path and query) in `representation`.
    pub fn of(request: &HttpRequest, scope: Scope, representation: &str, clock: bool) -> Self {
        Self {
            scope,
            key: format!(
                "{}?{}#{representation}",
                request.path(),
                request.query_string()
            ),
            clock,
        }
    }
}

/// The read cache: Redis when configured, else nothing (each read renders its view).
#[derive(Clone)]
pub struct Cache {
    store: Option<(Redis, Versions)>,
    settings: CacheSettings,
    /// Lookups by outcome: hit, miss, error (Redis failed; answered from the database).
    lookups: IntCounterVec,
}

/// What a lookup looked for.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A whole answer.
    View,
    /// A settled series bucket.
    Bucket,
}

/// What the cache holds of a view.
enum Lookup {
    Hit(Entry),
    /// Not stored: render it and store it under this key.
    Miss(String),
    /// Redis did not answer: render it, store nothing.
    Failed,
    /// No cache configured.
    Off,
}

/// A stored answer.
struct Entry {
    content_type: String,
    link: Option<String>,
    etag: String,
    body: actix_web::web::Bytes,
}

impl Cache {
    pub fn new(redis: Option<Redis>, settings: CacheSettings, lookups: IntCounterVec) -> Self {
        Self {
            store: redis.map(|r| (r.clone(), Versions::new(r))),
            settings,
            lookups,
        }
    }

    /// Answers `request` with `view` from the cache when it holds it, else with what `render`
    /// makes of it (stored for the next read when it is a `200`).
    pub async fn respond<F, Fut>(
        &self,
        request: &HttpRequest,
        view: View,
        render: F,
    ) -> Result<HttpResponse, Problem>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<HttpResponse, Problem>>,
    {
        let key = match self.lookup(&view).await {
            Lookup::Hit(entry) => {
                self.count(Kind::View, "hit", 1);
                return Ok(entry.respond(request, "hit"));
            }
            Lookup::Miss(key) => Some(key),
            Lookup::Failed => {
                self.count(Kind::View, "error", 1);
                None
            }
            Lookup::Off => None,
        };
        let rendered = render().await?;
        if rendered.status() != StatusCode::OK {
            return Ok(rendered);
        }
        let entry = Entry::of(rendered).await?;
        if let (Some(key), Some((redis, _))) = (key, &self.store) {
            self.count(Kind::View, "miss", 1);
            if entry.body.len() <= MAX_ENTRY_BYTES {
                let ttl = if view.clock {
                    self.settings.clock
                } else {
                    self.settings.stored
                };
                let millis = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1);
                if let Some(commands) = redis.commands() {
                    let expiry = Some(Expiration::PX(millis));
                    let stored = commands.set(key, entry.encode(), expiry, None, false).await;
                    let _: Option<Value> = redis.outcome("cache write", stored);
                }
            }
        }
        Ok(entry.respond(request, "miss"))
    }

    /// Looks `view` up under its scope's current version.
    async fn lookup(&self, view: &View) -> Lookup {
        let Some((redis, versions)) = &self.store else {
            return Lookup::Off;
        };
        let Some(version) = versions.current(&view.scope).await else {
            return Lookup::Failed;
        };
        let key = redis.key(&format!("view:{version}:{}", view.key));
        let Some(commands) = redis.commands() else {
            return Lookup::Failed;
        };
        let found: Option<Option<Vec<u8>>> =
            redis.outcome("cache read", commands.get(key.as_str()).await);
        match found {
            None => Lookup::Failed,
            Some(stored) => match stored.and_then(Entry::decode) {
                Some(entry) => Lookup::Hit(entry),
                None => Lookup::Miss(key),
            },
        }
    }

    /// Retires the views a committed write changed: the network's, those of each sensor it
    /// wrote, and a sensor's settled history when the write reached into it. Called before the
    /// write is acknowledged.
    pub async fn changed(&self, written: &Written) {
        if let Some((_, versions)) = &self.store {
            let late_before = Utc::now() - self.settings.settled / 2;
            let late = written
                .0
                .iter()
                .filter(|(_, start)| **start < late_before)
                .map(|(sensor, _)| sensor);
            versions.bump(written.0.keys(), late).await;
        }
    }

    /// Retires every view of `sensor`, its history's too: its metadata (time zone, lanes)
    /// changed.
    pub async fn changed_sensor(&self, sensor: &SensorId) {
        if let Some((_, versions)) = &self.store {
            versions.bump([sensor], [sensor]).await;
        }
    }

    /// The end of the settled past at `now`: buckets that end before it only change by late
    /// writes.
    pub fn settled_before(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - self.settings.settled
    }

    fn count(&self, kind: Kind, outcome: &str, lookups: usize) {
        let kind = match kind {
            Kind::View => "view",
            Kind::Bucket => "bucket",
        };
        self.lookups
            .with_label_values(&[kind, outcome])
            .inc_by(lookups as u64);
    }
}

impl Entry {
    async fn of(response: HttpResponse) -> Result<Self, Problem> {
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header(CONTENT_TYPE).unwrap_or_default();
        let link = header(LINK);
        let body = to_bytes(response.into_body()).await.map_err(|e| {
            Problem::new(
                problem::Kind::Internal,
                format!("reading a response body: {e}"),
            )
        })?;
        Ok(Self {
            etag: etag(&body),
            content_type,
            link,
            body,
        })
    }

    /// The answer to `request`: `304` when it already holds this body.
    fn respond(self, request: &HttpRequest, source: &'static str) -> HttpResponse {
        let not_modified = matches_etag(request, &self.etag);
        let mut response = if not_modified {
            HttpResponse::NotModified()
        } else {
            HttpResponse::Ok()
        };
        response
            .insert_header((ETAG, self.etag.as_str()))
            .insert_header((X_CACHE, source));
        if let Some(link) = &self.link {
            response.insert_header((LINK, link.as_str()));
        }
        if not_modified {
            return response.finish();
        }
        response
            .insert_header((CONTENT_TYPE, self.content_type.as_str()))
            .body(self.body)
    }

    /// `content type \n link \n etag \n body`.
    fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.body.len() + 128);
        for field in [
            self.content_type.as_str(),
            self.link.as_deref().unwrap_or(""),
            self.etag.as_str(),
        ] {
            bytes.extend_from_slice(field.as_bytes());
            bytes.push(b'\n');
        }
        bytes.extend_from_slice(&self.body);
        bytes
    }

    fn decode(bytes: Vec<u8>) -> Option<Self> {
        let mut rest = bytes.as_slice();
        let mut field = || {
            let end = rest.iter().position(|b| *b == b'\n')?;
            let value = std::str::from_utf8(&rest[..end]).ok()?.to_owned();
            rest = &rest[end + 1..];
            Some(value)
        };
        let (content_type, link, etag) = (field()?, field()?, field()?);
        Some(Self {
            content_type,
            link: (!link.is_empty()).then_some(link),
            etag,
            body: actix_web::web::Bytes::copy_from_slice(rest),
        })
    }
}

/// A weak validator of `body`, the same on every replica and every version.
fn etag(body: &[u8]) -> String {
    format!("W/\"{}\"", crate::digest::sha256_hex(body, 16))
}

/// Whether `If-None-Match` names `etag` (weak comparison, as RFC 9110 asks for it) or is `*`.
fn matches_etag(request: &HttpRequest, etag: &str) -> bool {
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    request
        .headers()
        .get_all(IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == "*" || opaque(tag) == opaque(etag))
}

//! The authorization server's signing keys: a JWK Set read from a file or fetched from a URL,
//! kept in memory and replaced as the authorization server rotates its keys.
//!
//! Refresh policy: the set is loaded at start-up and again every 10 minutes (a URL's
//! `Cache-Control: max-age`, held between 1 minute and 1 day, replaces the 10 minutes); after a
//! failure, every 30 s until it loads. A token whose `kid` no key has causes one re-load at
//! once, at most one such re-load every 30 s, so a rotated key is accepted without a restart
//! while a stream of made-up `kid`s costs the authorization server one request per 30 s. A
//! failed load keeps the keys loaded before, and is logged once until a load succeeds again.
//! Only keys for asymmetric signatures are kept: RSA of 2048 bits or more, P-256, P-384 and
//! Ed25519; symmetric (`oct`) keys, encryption keys (`use: enc`) and anything else are skipped.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, Uri, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::crypto::CryptoProvider;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind};
use serde::Deserialize;
use service_kit::telemetry::error_chain;
use tokio::task::JoinHandle;

use super::settings::JwksSource;

/// Longest a fetch of the key set may take, connection included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the key set is loaded again when nothing says otherwise.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(10 * 60);
/// The bounds on a `Cache-Control: max-age` taken as the refresh interval.
const MIN_REFRESH: Duration = Duration::from_secs(60);
const MAX_REFRESH: Duration = Duration::from_secs(24 * 60 * 60);
/// How soon a failed load is tried again.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(30);
/// At most one re-load for a token with an unknown `kid` per this interval.
pub const UNKNOWN_KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(30);
/// Largest key set read (real ones are a few KiB).
const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// Shortest RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// Why the key set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("cannot read the JWKS file {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot fetch the JWKS from {url}")]
    Fetch {
        url: String,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    #[error("fetching the JWKS from {url} took longer than {FETCH_TIMEOUT:?}")]
    Timeout { url: String },
    #[error("the JWKS URL {url} answered {status}")]
    Status {
        url: String,
        status: http::StatusCode,
    },
    #[error("cannot read the JWKS from {url} (at most {MAX_JWKS_BYTES} bytes)")]
    Body {
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the JWKS is not a JSON object with a `keys` array")]
    Parse(#[source] serde_json::Error),
    #[error(
        "the JWKS holds no key this server verifies signatures with (RSA of 2048 bits or more, \
         P-256, P-384, Ed25519; `use` sig)"
    )]
    NoUsableKeys,
    #[error("no CA certificates found on this system to check {url} against")]
    NoRootCertificates { url: String },
    #[error("cannot set up TLS for the JWKS fetch")]
    Tls(#[source] rustls::Error),
    #[error("cannot build the JWKS request")]
    Request(#[source] http::Error),
}

/// A key that may verify tokens, with the algorithms it verifies.
pub(super) struct Key {
    kid: Option<String>,
    pub(super) key: DecodingKey,
    algorithms: Vec<Algorithm>,
}

/// The keys loaded last; `loaded` is false until a load has succeeded.
#[derive(Default)]
pub(super) struct KeySet {
    keys: Vec<Key>,
    loaded: bool,
}

/// What a token's header finds in a key set.
pub(super) enum Lookup<'a> {
    Found(&'a Key),
    /// A key has the token's `kid` but not its algorithm.
    WrongAlgorithm,
    Unknown,
}

impl KeySet {
    /// The usable keys of a JWK Set document; keys this server cannot use are skipped.
    pub(super) fn parse(bytes: &[u8]) -> Result<Self, JwksError> {
        #[derive(Deserialize)]
        struct Document {
            keys: Vec<serde_json::Value>,
        }
        let document: Document = serde_json::from_slice(bytes).map_err(JwksError::Parse)?;
        let mut keys = Vec::with_capacity(document.keys.len());
        for (index, value) in document.keys.into_iter().enumerate() {
            match serde_json::from_value::<RawKey>(value) {
                Ok(raw) => match usable(raw) {
                    Ok(key) => keys.push(key),
                    Err(why) => tracing::debug!(index, why, "skipping a key of the JWKS"),
                },
                Err(e) => {
                    tracing::debug!(index, error = %e, "skipping a malformed key of the JWKS")
                }
            }
        }
        if keys.is_empty() {
            return Err(JwksError::NoUsableKeys);
        }
        Ok(Self { keys, loaded: true })
    }

    pub(super) fn is_loaded(&self) -> bool {
        self.loaded
    }

    /// The key for a token's `kid` and `alg`. A token without a `kid` takes the one key that
    /// verifies its algorithm, if there is exactly one.
    pub(super) fn find(&self, kid: Option<&str>, alg: Algorithm) -> Lookup<'_> {
        let fits = |key: &&Key| key.algorithms.contains(&alg);
        let Some(kid) = kid else {
            let mut candidates = self.keys.iter().filter(fits);
            return match (candidates.next(), candidates.next()) {
                (Some(key), None) => Lookup::Found(key),
                _ => Lookup::Unknown,
            };
        };
        let mut named = self
            .keys
            .iter()
            .filter(|key| key.kid.as_deref() == Some(kid))
            .peekable();
        if named.peek().is_none() {
            return Lookup::Unknown;
        }
        named
            .find(fits)
            .map_or(Lookup::WrongAlgorithm, Lookup::Found)
    }
}

/// A JWK as far as this server reads it.
#[derive(Deserialize)]
struct RawKey {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

/// The key and its algorithms, or why it is skipped.
fn usable(raw: RawKey) -> Result<Key, &'static str> {
    if raw.usage.as_deref().is_some_and(|usage| usage != "sig") {
        return Err("not a signing key (`use` is not `sig`)");
    }
    let (key, algorithms): (DecodingKey, &[Algorithm]) =
        match (raw.kty.as_str(), raw.crv.as_deref()) {
            ("RSA", _) => {
                let (Some(n), Some(e)) = (&raw.n, &raw.e) else {
                    return Err("an RSA key without `n` and `e`");
                };
                let key = DecodingKey::from_rsa_components(n, e)
                    .map_err(|_| "an RSA key whose `n` or `e` is not base64url")?;
                match key.kind() {
                    DecodingKeyKind::RsaModulusExponent { n, .. }
                        if modulus_bytes(n) >= MIN_RSA_MODULUS_BYTES => {}
                    _ => return Err("an RSA key shorter than 2048 bits"),
                }
                (key, AlgorithmFamily::Rsa.algorithms())
            }
            ("EC", Some("P-256")) => (ec_key(&raw, 32)?, &[Algorithm::ES256]),
            ("EC", Some("P-384")) => (ec_key(&raw, 48)?, &[Algorithm::ES384]),
            ("OKP", Some("Ed25519")) => {
                let x = raw.x.as_deref().ok_or("an Ed25519 key without `x`")?;
                let key = DecodingKey::from_ed_components(x)
                    .map_err(|_| "an Ed25519 key whose `x` is not base64url")?;
                if key.try_get_as_bytes().map(<[u8]>::len) != Ok(32) {
                    return Err("an Ed25519 key whose `x` is not 32 bytes");
                }
                (key, &[Algorithm::EdDSA])
            }
            ("oct", _) => return Err("a symmetric key: HMAC signatures are never accepted"),
            _ => return Err("a key type or curve this server does not verify with"),
        };
    let algorithms = match raw.alg.as_deref() {
        None => algorithms.to_vec(),
        Some(alg) => match Algorithm::from_str(alg) {
            Ok(alg) if algorithms.contains(&alg) => vec![alg],
            _ => return Err("an `alg` that does not fit the key, or is not accepted"),
        },
    };
    // The crypto backend must take the key: an EC point off its curve is refused here, not
    // at each token.
    let provider = CryptoProvider::try_get_default().ok_or("no crypto provider")?;
    for alg in &algorithms {
        (provider.verifier_factory)(alg, &key).map_err(|_| "a key the crypto backend refuses")?;
    }
    Ok(Key {
        kid: raw.kid,
        key,
        algorithms,
    })
}

/// An EC key whose coordinates have the curve's length.
fn ec_key(raw: &RawKey, coordinate: usize) -> Result<DecodingKey, &'static str> {
    let (Some(x), Some(y)) = (&raw.x, &raw.y) else {
        return Err("an EC key without `x` and `y`");
    };
    let key = DecodingKey::from_ec_components(x, y)
        .map_err(|_| "an EC key whose `x` or `y` is not base64url")?;
    // 0x04, then x and y.
    if key.try_get_as_bytes().map(<[u8]>::len) != Ok(1 + 2 * coordinate) {
        return Err("an EC key whose coordinates do not fit its curve");
    }
    Ok(key)
}

/// The length of a big-endian modulus without its leading zero bytes.
fn modulus_bytes(n: &[u8]) -> usize {
    n.iter().skip_while(|&&b| b == 0).count()
}

type HttpsClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

enum Source {
    File(PathBuf),
    Url { url: Uri, client: Box<HttpsClient> },
}

/// The current key set and how to load it again.
pub(super) struct KeyStore {
    source: Source,
    keys: RwLock<Arc<KeySet>>,
    /// When the last re-load for an unknown `kid` started; held while it runs, so requests
    /// that need it wait for it instead of fetching again.
    reloaded: tokio::sync::Mutex<Option<Instant>>,
    /// The last load failed (its error has been logged).
    failing: AtomicBool,
}

impl KeyStore {
    /// Loads the key set and keeps it loading: a file that cannot be read or holds no usable
    /// key is an error (a mistake in the configuration); a URL that fails is logged and tried
    /// again every 30 s, and until it loads every token is answered 503. The refresh task
    /// stops once the store is dropped.
    pub(super) async fn open(
        source: &JwksSource,
    ) -> Result<(Arc<Self>, JoinHandle<()>), JwksError> {
        let store = Arc::new(Self {
            source: match source {
                JwksSource::File(path) => Source::File(path.clone()),
                JwksSource::Url(url) => Source::Url {
                    url: url.clone(),
                    client: Box::new(https_client(url)?),
                },
            },
            keys: RwLock::default(),
            reloaded: tokio::sync::Mutex::new(None),
            failing: AtomicBool::new(false),
        });
        let next = match store.reload().await {
            Ok(next) => next,
            Err(e) if matches!(store.source, Source::File(_)) => return Err(e),
            Err(e) => {
                store.failing.store(true, Ordering::Relaxed);
                tracing::error!(error = %error_chain(&e), retry_in = ?RETRY_INTERVAL,
                    "cannot load the authorization server's keys: requests with a token are \
                     answered 503 until they load");
                RETRY_INTERVAL
            }
        };
        let refresher = Arc::downgrade(&store);
        let task = tokio::spawn(async move {
            let mut next = next;
            loop {
                tokio::time::sleep(next).await;
                let Some(store) = refresher.upgrade() else {
                    return;
                };
                next = store.refresh().await;
            }
        });
        Ok((store, task))
    }

    /// The keys loaded last.
    pub(super) fn current(&self) -> Arc<KeySet> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Loads the key set again for a token whose `kid` is unknown, unless that was done less
    /// than [`UNKNOWN_KEY_RELOAD_INTERVAL`] ago.
    pub(super) async fn reload_for_unknown_key(&self) {
        let mut last = self.reloaded.lock().await;
        if last.is_some_and(|at| at.elapsed() < UNKNOWN_KEY_RELOAD_INTERVAL) {
            return;
        }
        *last = Some(Instant::now());
        tracing::debug!("a token names a key not loaded: loading the keys again");
        self.refresh().await;
    }

    /// Loads the key set again, keeping the keys it has when that fails; says when to next.
    async fn refresh(&self) -> Duration {
        match self.reload().await {
            Ok(next) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("the authorization server's keys are loaded again");
                }
                next
            }
            Err(e) => {
                let kept = self.current().keys.len();
                if self.failing.swap(true, Ordering::Relaxed) {
                    tracing::debug!(error = %error_chain(&e), kept, "loading the authorization server's keys still fails");
                } else {
                    tracing::error!(error = %error_chain(&e), kept, retry_in = ?RETRY_INTERVAL,
                        "cannot load the authorization server's keys: keeping those loaded before");
                }
                RETRY_INTERVAL
            }
        }
    }

    /// Loads and installs the key set; says when to load it next.
    async fn reload(&self) -> Result<Duration, JwksError> {
        let (bytes, max_age) = match &self.source {
            Source::File(path) => {
                let bytes = tokio::fs::read(path)
                    .await
                    .map_err(|source| JwksError::Read {
                        path: path.display().to_string(),
                        source,
                    })?;
                (Bytes::from(bytes), None)
            }
            Source::Url { url, client } => fetch(client, url).await?,
        };
        let set = KeySet::parse(&bytes)?;
        tracing::debug!(
            keys = set.keys.len(),
            "loaded the authorization server's keys"
        );
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(set);
        Ok(max_age.map_or(REFRESH_INTERVAL, |age| age.clamp(MIN_REFRESH, MAX_REFRESH)))
    }
}

/// A client for the JWKS URL: TLS with ring and the system's CA certificates (an `http://`
/// URL, loopback only, needs none).
fn https_client(url: &Uri) -> Result<HttpsClient, JwksError> {
    let mut roots = rustls::RootCertStore::empty();
    if url.scheme() == Some(&http::uri::Scheme::HTTPS) {
        let native = rustls_native_certs::load_native_certs();
        for error in &native.errors {
            tracing::debug!(%error, "skipping a CA certificate source");
        }
        let (added, _) = roots.add_parsable_certificates(native.certs);
        if added == 0 {
            return Err(JwksError::NoRootCertificates {
                url: url.to_string(),
            });
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(JwksError::Tls)?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// GETs the key set (no redirects followed), with the `max-age` its `Cache-Control` gives.
async fn fetch(client: &HttpsClient, url: &Uri) -> Result<(Bytes, Option<Duration>), JwksError> {
    let request = Request::get(url.clone())
        .header(header::ACCEPT, "application/jwk-set+json, application/json")
        .header(
            header::USER_AGENT,
            concat!("smart-traffic-mcp-classifier/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::new())
        .map_err(JwksError::Request)?;
    let url_text = || url.to_string();
    let fetch = async {
        let response = client
            .request(request)
            .await
            .map_err(|source| JwksError::Fetch {
                url: url_text(),
                source,
            })?;
        if !response.status().is_success() {
            return Err(JwksError::Status {
                url: url_text(),
                status: response.status(),
            });
        }
        let max_age = max_age(response.headers());
        let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
            .collect()
            .await
            .map_err(|source| JwksError::Body {
                url: url_text(),
                source,
            })?;
        Ok((body.to_bytes(), max_age))
    };
    tokio::time::timeout(FETCH_TIMEOUT, fetch)
        .await
        .map_err(|_| JwksError::Timeout { url: url_text() })?
}

/// `Cache-Control: max-age=N`, unless the response also says not to keep it.
fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let mut age = None;
    for directive in headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
    {
        let directive = directive.trim();
        if directive.eq_ignore_ascii_case("no-store") || directive.eq_ignore_ascii_case("no-cache")
        {
            return None;
        }
        if let Some((name, value)) = directive.split_once('=')
            && name.trim().eq_ignore_ascii_case("max-age")
        {
            age = value
                .trim()
                .trim_matches('"')
                .parse()
                .ok()
                .map(Duration::from_secs);
        }
    }
    age
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;

    use super::*;

    /// An Ed25519 public key (RFC 8037's example).
    const ED_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    /// A P-256 public key (RFC 7517's example).
    const P256_X: &str = "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4";
    const P256_Y: &str = "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM";

    fn set(keys: serde_json::Value) -> Result<KeySet, JwksError> {
        KeySet::parse(json!({ "keys": keys }).to_string().as_bytes())
    }

    fn ed(kid: &str) -> serde_json::Value {
        json!({"kty": "OKP", "crv": "Ed25519", "x": ED_X, "kid": kid})
    }

    /// What `keys` finds for a token's `kid` and `alg`, in words.
    fn lookup(keys: &KeySet, kid: Option<&str>, alg: Algorithm) -> &'static str {
        match keys.find(kid, alg) {
            Lookup::Found(_) => "found",
            Lookup::WrongAlgorithm => "wrong algorithm",
            Lookup::Unknown => "unknown",
        }
    }

    #[test]
    fn keys_are_found_by_kid_and_algorithm() {
        let keys = set(json!([
            ed("ed-1"),
            {"kty": "EC", "crv": "P-256", "x": P256_X, "y": P256_Y, "kid": "ec-1", "use": "sig"},
        ]))
        .unwrap();
        assert!(keys.is_loaded());
        for (kid, alg, found) in [
            (Some("ed-1"), Algorithm::EdDSA, "found"),
            (Some("ec-1"), Algorithm::ES256, "found"),
            // The key's algorithm, never another.
            (Some("ec-1"), Algorithm::ES384, "wrong algorithm"),
            (Some("ed-1"), Algorithm::HS256, "wrong algorithm"),
            (Some("ed-2"), Algorithm::EdDSA, "unknown"),
            // Without a kid: the one key of the algorithm.
            (None, Algorithm::EdDSA, "found"),
            (None, Algorithm::RS256, "unknown"),
        ] {
            assert_eq!(lookup(&keys, kid, alg), found, "{kid:?} {alg:?}");
        }
        let two = set(json!([ed("a"), ed("b")])).unwrap();
        assert_eq!(lookup(&two, None, Algorithm::EdDSA), "unknown");
        assert!(!KeySet::default().is_loaded());
    }

    #[test]
    fn keys_this_server_cannot_verify_with_are_skipped() {
        let keys = set(json!([
            {"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQ", "kid": "hmac"},
            {"kty": "OKP", "crv": "Ed25519", "x": ED_X, "kid": "enc", "use": "enc"},
            {"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "kid": "short"},
            {"kty": "OKP", "crv": "Ed448", "x": ED_X, "kid": "ed448"},
            {"kty": "EC", "crv": "P-256", "x": P256_X, "y": P256_X, "kid": "off-curve"},
            {"kty": "EC", "crv": "P-384", "x": P256_X, "y": P256_Y, "kid": "wrong-size"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "rsa-tiny"},
            {"kty": "OKP", "crv": "Ed25519", "x": ED_X, "kid": "alg-none", "alg": "none"},
            {"kty": "OKP", "crv": "Ed25519", "x": ED_X, "kid": "alg-rs", "alg": "RS256"},
            {"kty": "OKP", "x": ED_X, "kid": "no-curve"},
            {"kty": 7},
            ed("good"),
        ]))
        .unwrap();
        assert_eq!(keys.keys.len(), 1);
        assert_eq!(lookup(&keys, Some("good"), Algorithm::EdDSA), "found");
        assert_eq!(lookup(&keys, Some("hmac"), Algorithm::HS256), "unknown");
        assert!(matches!(
            set(json!([{"kty": "oct", "k": "c2VjcmV0"}])),
            Err(JwksError::NoUsableKeys)
        ));
        assert!(matches!(KeySet::parse(b"[]"), Err(JwksError::Parse(_))));
    }

    #[test]
    fn a_jwk_alg_narrows_the_key_to_that_algorithm() {
        let keys = set(json!([
            {"kty": "OKP", "crv": "Ed25519", "x": ED_X, "kid": "k", "alg": "EdDSA"},
        ]))
        .unwrap();
        assert_eq!(lookup(&keys, Some("k"), Algorithm::EdDSA), "found");
    }

    #[test]
    fn max_age_comes_from_cache_control_unless_it_forbids_keeping() {
        let headers = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CACHE_CONTROL, value.parse().unwrap());
            headers
        };
        assert_eq!(
            max_age(&headers("public, max-age=3600, must-revalidate")),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            max_age(&headers("Max-Age = 90")),
            Some(Duration::from_secs(90))
        );
        assert_eq!(max_age(&headers("no-store, max-age=90")), None);
        assert_eq!(max_age(&headers("max-age=soon")), None);
        assert_eq!(max_age(&HeaderMap::new()), None);
    }

    #[tokio::test]
    async fn a_file_that_cannot_be_loaded_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.json");
        let Err(error) = KeyStore::open(&JwksSource::File(missing.clone())).await else {
            panic!("a missing file loads");
        };
        assert!(
            error.to_string().contains(&missing.display().to_string()),
            "{error}"
        );
        let empty = dir.path().join("empty.json");
        std::fs::write(&empty, r#"{"keys":[]}"#).unwrap();
        assert!(matches!(
            KeyStore::open(&JwksSource::File(empty)).await,
            Err(JwksError::NoUsableKeys)
        ));
    }

    #[tokio::test]
    async fn a_file_is_read_again_for_an_unknown_key_at_most_every_30_s() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        std::fs::write(&path, json!({"keys": [ed("old")]}).to_string()).unwrap();
        let (store, task) = KeyStore::open(&JwksSource::File(path.clone()))
            .await
            .unwrap();
        let found = |store: &KeyStore, kid: &str| {
            lookup(&store.current(), Some(kid), Algorithm::EdDSA) == "found"
        };
        assert!(found(&store, "old"));
        std::fs::write(&path, json!({"keys": [ed("new")]}).to_string()).unwrap();
        store.reload_for_unknown_key().await;
        assert!(found(&store, "new"));
        assert!(!found(&store, "old"));
        // The next re-load for an unknown key waits its turn.
        std::fs::write(&path, json!({"keys": [ed("newer")]}).to_string()).unwrap();
        store.reload_for_unknown_key().await;
        assert!(!found(&store, "newer"));
        // A file that breaks keeps the keys loaded before.
        std::fs::write(&path, "not json").unwrap();
        store.refresh().await;
        assert!(found(&store, "new"));
        task.abort();
    }
}

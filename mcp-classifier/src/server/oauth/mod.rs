//! The Streamable HTTP server as an OAuth 2.1 resource server, as the MCP authorization spec
//! (2025-06-18, 2025-11-25) describes it: JWT access tokens from one authorization server,
//! checked against its published keys ([`jwks`]), bound to this server's resource URL
//! ([`validate`]), with a scope per kind of operation ([`scope`]); the protected resource
//! metadata and the `WWW-Authenticate` challenges that lead a client to the authorization
//! server ([`metadata`]). [`super::http`] asks [`ResourceServer::authorize`] about each
//! request's token and checks the scope its body needs.

mod jwks;
mod metadata;
pub mod scope;
mod settings;
mod validate;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode, header};
use tokio::task::JoinHandle;

pub use self::jwks::{
    FETCH_TIMEOUT, JwksError, REFRESH_INTERVAL, RETRY_INTERVAL, UNKNOWN_KEY_RELOAD_INTERVAL,
};
pub use self::metadata::WELL_KNOWN;
pub use self::scope::Scopes;
pub use self::settings::{JwksSource, OAuthSettings, ResourceUrl, SettingsError};
pub use self::validate::{LEEWAY, TokenError};

use self::jwks::KeyStore;
use self::validate::Validator;

/// Checks access tokens for this server's resource. Dropping it stops the key refresh.
pub struct ResourceServer {
    resource: ResourceUrl,
    keys: Arc<KeyStore>,
    validator: Validator,
    metadata: Bytes,
    metadata_url: String,
    /// The paths the metadata is served at: the well-known path, and the path suffixed with
    /// the resource's path (RFC 9728 §3.1), which the challenges name.
    metadata_paths: Vec<String>,
    refresh: JoinHandle<()>,
}

/// What a request may do: the scopes granted and whose token it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub scopes: Scopes,
    pub subject: Option<String>,
}

impl Grant {
    /// Everything, for no one in particular: no authorization, or the static token.
    pub fn everything() -> Self {
        Self {
            scopes: Scopes::ALL,
            subject: None,
        }
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No bearer token.
    NoToken,
    Invalid(TokenError),
    /// A valid token without the scopes the request needs (the scopes it needs).
    InsufficientScope(Scopes),
}

/// How a refusal is answered.
pub struct Challenge {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub text: String,
}

impl ResourceServer {
    /// Loads the authorization server's keys (a file must load; see [`jwks`] for a URL) and
    /// starts refreshing them.
    pub async fn start(settings: &OAuthSettings) -> Result<Self, JwksError> {
        let (keys, refresh) = KeyStore::open(&settings.jwks).await?;
        let mut metadata_paths = vec![
            WELL_KNOWN.to_owned(),
            format!("{WELL_KNOWN}{}", super::http::MCP_PATH),
        ];
        let own = settings.resource.metadata_path();
        if !metadata_paths.contains(&own) {
            metadata_paths.push(own);
        }
        Ok(Self {
            resource: settings.resource.clone(),
            keys,
            validator: Validator::new(&settings.issuer, &settings.resource.url),
            metadata: metadata::document(settings),
            metadata_url: settings.resource.metadata_url(),
            metadata_paths,
            refresh,
        })
    }

    /// The resource URL's host, a name clients reach this server by.
    pub fn resource_host(&self) -> &str {
        &self.resource.host
    }

    /// Whether `path` is one the metadata is served at.
    pub fn serves_metadata_at(&self, path: &str) -> bool {
        self.metadata_paths.iter().any(|p| p == path)
    }

    /// The protected resource metadata, as JSON.
    pub fn metadata(&self) -> Bytes {
        self.metadata.clone()
    }

    /// What the bearer `token` grants.
    pub async fn authorize(&self, token: Option<&str>) -> Result<Grant, Refusal> {
        let token = token.ok_or(Refusal::NoToken)?;
        match self.validator.validate(token, &self.keys).await {
            Ok(verified) => Ok(Grant {
                scopes: verified.scopes,
                subject: verified.subject,
            }),
            Err(error) => {
                tracing::debug!(%error, "refused an access token");
                Err(Refusal::Invalid(error))
            }
        }
    }

    /// The answer to a refusal: `401` with the way to the metadata for a missing or invalid
    /// token, `403 insufficient_scope` naming the scopes needed, `503` while no keys are
    /// loaded (the token may well be valid: a `401` would send the client to authorize again
    /// for nothing).
    pub fn challenge(&self, refusal: &Refusal) -> Challenge {
        let pointer = ("resource_metadata", self.metadata_url.as_str());
        let authenticate =
            |params: &[(&str, &str)]| vec![(header::WWW_AUTHENTICATE, metadata::challenge(params))];
        match refusal {
            Refusal::NoToken => Challenge {
                status: StatusCode::UNAUTHORIZED,
                headers: authenticate(&[pointer, ("scope", &Scopes::ALL.to_string())]),
                text: "missing bearer token".to_owned(),
            },
            Refusal::Invalid(TokenError::KeysUnavailable) => Challenge {
                status: StatusCode::SERVICE_UNAVAILABLE,
                headers: vec![(
                    header::RETRY_AFTER,
                    HeaderValue::from(RETRY_INTERVAL.as_secs()),
                )],
                text: format!("{}; try again shortly", TokenError::KeysUnavailable),
            },
            Refusal::Invalid(error) => {
                let description = error.to_string();
                Challenge {
                    status: StatusCode::UNAUTHORIZED,
                    headers: authenticate(&[
                        ("error", "invalid_token"),
                        ("error_description", &description),
                        pointer,
                    ]),
                    text: format!("invalid bearer token: {description}"),
                }
            }
            Refusal::InsufficientScope(needed) => {
                let needed = needed.to_string();
                let description = format!("this request needs the scope {needed}");
                Challenge {
                    status: StatusCode::FORBIDDEN,
                    headers: authenticate(&[
                        ("error", "insufficient_scope"),
                        ("scope", &needed),
                        pointer,
                        ("error_description", &description),
                    ]),
                    text: format!("insufficient scope: {description}"),
                }
            }
        }
    }
}

impl Drop for ResourceServer {
    fn drop(&mut self) {
        self.refresh.abort();
    }
}

impl std::fmt::Debug for ResourceServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceServer")
            .field("resource", &self.resource.url)
            .finish_non_exhaustive()
    }
}

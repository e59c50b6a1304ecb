//! API keys: required on writes when configured, and on reads too when asked.

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{Error, HttpRequest};
use service_kit::auth::{ExposeSecret, SecretString, bearer_token, matches_any};

use crate::problem::{Kind, Problem};

/// The accepted keys and where they apply.
#[derive(Debug, Clone, Default)]
pub struct ApiKeys {
    keys: Vec<SecretString>,
    reads_too: bool,
}

/// What a route does, for deciding whether it needs a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Probes, metrics and the API's documentation: never behind a key.
    Open,
    Read,
    Write,
}

impl ApiKeys {
    /// Empty keys are dropped: `INGEST_API_KEYS=` must not accept an empty key.
    pub fn new(keys: Vec<SecretString>, reads_too: bool) -> Self {
        let keys = keys
            .into_iter()
            .filter(|k| !k.expose_secret().trim().is_empty())
            .collect();
        Self { keys, reads_too }
    }

    pub fn is_enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Whether a route with `access` needs a key.
    pub fn required_for(&self, access: Access) -> bool {
        self.is_enabled()
            && match access {
                Access::Open => false,
                Access::Read => self.reads_too,
                Access::Write => true,
            }
    }

    /// Ok when the request carries a valid key, taken from `Authorization: Bearer KEY` or
    /// `X-API-Key: KEY` and compared to every configured key in constant time.
    pub fn check(&self, request: &HttpRequest) -> Result<(), Problem> {
        let Some(presented) = presented_key(request) else {
            return Err(Problem::new(
                Kind::Unauthorized,
                "send an API key as `Authorization: Bearer KEY` or `X-API-Key: KEY`",
            ));
        };
        if matches_any(presented, &self.keys) {
            Ok(())
        } else {
            Err(Problem::new(Kind::Unauthorized, "the API key is not valid"))
        }
    }
}

/// The key a request presents, from `Authorization: Bearer KEY` or `X-API-Key: KEY`.
pub fn presented_key(request: &HttpRequest) -> Option<&str> {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .or_else(|| {
            request
                .headers()
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
        })
        .map(str::trim)
}

/// The middleware in front of every route that needs a key: refuses before the handler reads
/// the body.
pub async fn require_key(
    keys: Arc<ApiKeys>,
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    keys.check(request.request())?;
    next.call(request).await
}

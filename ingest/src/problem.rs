//! RFC 9457 problem details: every 4xx/5xx the API sends is `application/problem+json`.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use schemars::JsonSchema;
use serde::Serialize;
use traffic_model::reading::FieldError;

pub const CONTENT_TYPE: &str = "application/problem+json";

/// The kinds of problem this API reports; each has a stable `type` URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    MalformedJson,
    MalformedBody,
    BodyTimeout,
    InvalidReading,
    InvalidMetadata,
    InvalidQuery,
    BodyTooLarge,
    TooManyReadings,
    UnsupportedMediaType,
    NotAcceptable,
    Unauthorized,
    NotFound,
    MethodNotAllowed,
    RateLimited,
    Unavailable,
    StorageFull,
    Internal,
}

impl Kind {
    fn slug(self) -> &'static str {
        match self {
            Kind::MalformedJson => "malformed-json",
            Kind::MalformedBody => "malformed-body",
            Kind::BodyTimeout => "body-timeout",
            Kind::InvalidReading => "invalid-reading",
            Kind::InvalidMetadata => "invalid-sensor-metadata",
            Kind::InvalidQuery => "invalid-query",
            Kind::BodyTooLarge => "body-too-large",
            Kind::TooManyReadings => "too-many-readings",
            Kind::UnsupportedMediaType => "unsupported-media-type",
            Kind::NotAcceptable => "not-acceptable",
            Kind::Unauthorized => "unauthorized",
            Kind::NotFound => "not-found",
            Kind::MethodNotAllowed => "method-not-allowed",
            Kind::RateLimited => "rate-limited",
            Kind::Unavailable => "database-unavailable",
            Kind::StorageFull => "storage-full",
            Kind::Internal => "internal-error",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Kind::MalformedJson | Kind::MalformedBody | Kind::InvalidQuery => {
                StatusCode::BAD_REQUEST
            }
            Kind::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Kind::InvalidReading | Kind::InvalidMetadata => StatusCode::UNPROCESSABLE_ENTITY,
            Kind::BodyTooLarge | Kind::TooManyReadings => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Kind::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            Kind::Unauthorized => StatusCode::UNAUTHORIZED,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Kind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Kind::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
            Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Kind::MalformedJson => "The request body is not valid JSON",
            Kind::MalformedBody => "The request body could not be decoded",
            Kind::BodyTimeout => "The request body did not arrive in time",
            Kind::InvalidReading => "The reading breaks the rules of a sensor reading",
            Kind::InvalidMetadata => "The sensor metadata breaks its rules",
            Kind::InvalidQuery => "The query parameters are invalid",
            Kind::BodyTooLarge => "The request body is too large",
            Kind::TooManyReadings => "The batch holds too many readings",
            Kind::UnsupportedMediaType => "Unsupported content type",
            Kind::NotAcceptable => "No representation the request accepts",
            Kind::Unauthorized => "A valid API key is required",
            Kind::NotFound => "Not found",
            Kind::MethodNotAllowed => "Method not allowed",
            Kind::RateLimited => "Too many readings for this sender",
            Kind::Unavailable => "The database is unavailable",
            Kind::StorageFull => "The database has no room to write",
            Kind::Internal => "Internal server error",
        }
    }

    /// The `type` URI: relative, resolved against the API's own address.
    pub fn type_uri(self) -> String {
        format!("/problems/{}", self.slug())
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema, thiserror::Error)]
#[error("{title}: {detail}")]
pub struct Problem {
    /// Identifies the kind of problem (a URI reference).
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    /// What went wrong with this request, in words.
    pub detail: String,
    /// For validation problems: every offending field and its rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    #[serde(skip)]
    kind: Option<Kind>,
    /// For 405: the methods the resource allows (the `Allow` header).
    /// A header the answer carries besides (`Allow`, `Retry-After`).
    #[serde(skip)]
    header: Option<Box<(header::HeaderName, String)>>,
}

impl Problem {
    pub fn new(kind: Kind, detail: impl Into<String>) -> Self {
        Self {
            type_uri: kind.type_uri(),
            title: kind.title().to_owned(),
            status: kind.status().as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            kind: Some(kind),
            header: None,
        }
    }

    /// `429`: the sender's readings are over its rate; it may send again after `wait`.
    pub fn rate_limited(wait: std::time::Duration, limit: &crate::rate_limit::RateLimit) -> Self {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let mut problem = Self::new(
            Kind::RateLimited,
            format!(
                "this sender may send {} readings a second (bursts of {}); retry in {seconds} s",
                limit.per_second, limit.burst
            ),
        );
        problem.header = Some(Box::new((header::RETRY_AFTER, seconds.max(1).to_string())));
        problem
    }

    /// A 405 naming the methods the resource allows.
    pub fn method_not_allowed(method: &str, path: &str, allow: &str) -> Self {
        let mut problem = Self::new(
            Kind::MethodNotAllowed,
            format!("{method} is not allowed on {path}; allowed: {allow}"),
        );
        problem.header = Some(Box::new((header::ALLOW, allow.to_owned())));
        problem
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    pub fn kind(&self) -> Option<Kind> {
        self.kind
    }

    /// A 500 that says nothing about internals; the cause goes to the log only.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %service_kit::telemetry::error_chain(cause), "internal error");
        Self::new(
            Kind::Internal,
            "the server could not complete the request; it has been logged",
        )
    }

    /// Maps a store failure: database unreachable or failing on its own account → 503,
    /// anything else → 500.
    pub fn from_store(error: &traffic_store::StoreError) -> Self {
        use traffic_store::StoreError;
        if let StoreError::InvalidMetadata(invalid) = error {
            return Self::invalid_metadata(invalid);
        }
        if !error.is_unavailable() {
            return Self::internal(error);
        }
        if error.is_storage_full() {
            tracing::error!(error = %service_kit::telemetry::error_chain(error), "database out of storage");
            return Self::new(
                Kind::StorageFull,
                "the database has no room to write; nothing was written, retry once space is freed",
            );
        }
        tracing::warn!(error = %service_kit::telemetry::error_chain(error), "database unavailable");
        let detail = if matches!(error, StoreError::Unavailable(_)) {
            "the database could not be reached; nothing was written, retry later"
        } else {
            // The statement may have been cut off after the database committed it.
            "the database failed while serving the request; retry later \
             (a reading sent again is never stored twice)"
        };
        Self::new(Kind::Unavailable, detail)
    }
}

impl Problem {
    /// 422 listing every field of the sensor metadata that breaks a rule.
    /// A `400 invalid-query` naming one parameter (a rule between parameters, which no one
    /// parameter's own parse can see).
    pub fn invalid_query(field: &str, message: &str) -> Self {
        Problem::new(Kind::InvalidQuery, format!("{field} {message}")).with_errors(vec![
            traffic_model::reading::FieldError {
                field: field.to_owned(),
                message: message.to_owned(),
            },
        ])
    }

    pub fn invalid_metadata(invalid: &traffic_model::sensor::MetadataError) -> Self {
        Self::new(
            Kind::InvalidMetadata,
            format!("{} field(s) are invalid", invalid.errors.len()),
        )
        .with_errors(invalid.errors.clone())
    }
}

impl From<traffic_store::StoreError> for Problem {
    fn from(error: traffic_store::StoreError) -> Self {
        Self::from_store(&error)
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE)));
        if self.kind == Some(Kind::Unauthorized) {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        if let Some(extra) = &self.header {
            response.insert_header((extra.0.clone(), extra.1.as_str()));
        }
        match self.kind {
            Some(Kind::Unavailable) => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("5")));
            }
            // Space comes back only when an operator makes it: ask senders to back off longer.
            Some(Kind::StorageFull) => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("30")));
            }
            _ => {}
        }
        if self.kind == Some(Kind::BodyTimeout) {
            // The rest of the body may still come; the connection cannot be reused.
            response.force_close();
        }
        response.json(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_serialises_as_rfc_9457() {
        let problem = Problem::new(Kind::InvalidReading, "2 fields are invalid").with_errors(vec![
            FieldError {
                field: "lane".into(),
                message: "must be an integer from 0 to 32".into(),
            },
        ]);
        let json = serde_json::to_value(&problem).unwrap();
        assert_eq!(json["type"], "/problems/invalid-reading");
        assert_eq!(json["status"], 422);
        assert_eq!(json["errors"][0]["field"], "lane");
        assert_eq!(
            problem.error_response().status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let bare = serde_json::to_value(Problem::new(Kind::NotFound, "no event 4")).unwrap();
        assert!(bare.get("errors").is_none());
    }
}

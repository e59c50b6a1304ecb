//! `GET /openapi.json`: the API's OpenAPI document (its page, `GET /docs`, is in [`super::pages`]).

use std::sync::OnceLock;

use actix_web::HttpResponse;
use actix_web::http::header;

/// The document, built once.
fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| crate::openapi::document().to_string())
}

pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(header::ContentType::json())
        .body(document())
}

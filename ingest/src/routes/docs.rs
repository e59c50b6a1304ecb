//! `GET /openapi.json` and an interactive page for it at `GET /docs`.

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

/// Scalar's API reference, loaded from its CDN, pointed at `/openapi.json`.
pub async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(header::ContentType::html())
        .body(
            r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>smart-traffic ingest API</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body>
<script id="api-reference" data-url="/openapi.json"></script>
<script src="https://cdn.jsdelivr.net/npm/@scalar/api-reference"></script>
</body>
</html>"#,
        )
}

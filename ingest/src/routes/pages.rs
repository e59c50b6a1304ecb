//! The pages: the dashboard (`GET /`), the API reference (`GET /docs`) and their files
//! (`GET /ui/{path}`), embedded in the binary from `ingest/web/` (debug builds read them from
//! disk, so a page can be changed without a rebuild). Nothing is loaded from elsewhere but the
//! map's tiles, when configured. Each answer carries a strong `ETag` (the file's SHA-256) and
//! `Cache-Control: no-cache`: a reload costs a `304` per file.

use actix_web::http::header::{self, HeaderValue};
use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use rust_embed::{EmbeddedFile, RustEmbed};

use crate::app::AppState;
use crate::digest::hex;
use crate::problem::{Kind, Problem};
use crate::settings::DashboardSettings;

#[derive(RustEmbed)]
#[folder = "web/"]
struct Files;

/// What the pages may load: their own files, and the tiles' server for images.
fn content_policy(tiles: &str) -> String {
    let images = match tile_origin(tiles) {
        origin if origin.is_empty() => "'self' data:".to_owned(),
        origin => format!("'self' data: {origin}"),
    };
    format!(
        "default-src 'self'; img-src {images}; style-src 'self' 'unsafe-inline'; \
         connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )
}

/// The origin of a tile URL template, for the content policy: `{s}` (a subdomain) is any.
fn tile_origin(template: &str) -> String {
    let Some((scheme, rest)) = template.split_once("://") else {
        return String::new();
    };
    let host = rest
        .split('/')
        .next()
        .unwrap_or_default()
        .replace("{s}", "*");
    if host.is_empty() || host.contains(['{', '}', ' ', ';', '\'']) {
        format!("{scheme}:")
    } else {
        format!("{scheme}://{host}")
    }
}

/// `GET /`: the dashboard, with the map's tile settings written into it.
pub async fn dashboard(state: Data<AppState>, request: HttpRequest) -> HttpResponse {
    let DashboardSettings {
        tiles_url,
        tiles_attribution,
    } = &state.dashboard;
    let Some(file) = Files::get("index.html") else {
        return missing("index.html");
    };
    let page = String::from_utf8_lossy(&file.data)
        .replace("{{TILES}}", &attribute(tiles_url))
        .replace("{{TILES_ATTRIBUTION}}", &attribute(tiles_attribution));
    let etag = format!("\"{}\"", crate::digest::sha256_hex(page.as_bytes(), 16));
    respond(
        &request,
        &etag,
        "text/html; charset=utf-8",
        page.into_bytes(),
    )
    .map(|mut response| {
        if let Ok(policy) = HeaderValue::from_str(&content_policy(tiles_url)) {
            response
                .headers_mut()
                .insert(header::CONTENT_SECURITY_POLICY, policy);
        }
        response
    })
    .unwrap_or_else(|| missing("index.html"))
}

/// `GET /docs`: the API reference, drawn from `/openapi.json`.
pub async fn docs(request: HttpRequest) -> HttpResponse {
    file(&request, "docs.html").unwrap_or_else(|| missing("docs.html"))
}

/// `GET /ui/{path}`: a file of the pages.
pub async fn asset(request: HttpRequest, path: Path<String>) -> Result<HttpResponse, Problem> {
    let path = path.into_inner();
    inside_folder(&path)
        .then(|| file(&request, &path))
        .flatten()
        .ok_or_else(|| Problem::new(Kind::NotFound, format!("no file /ui/{path}")))
}

/// Whether `path` names a file inside the folder: debug builds read it from disk, and a `..`
/// must not lead out of it.
fn inside_folder(path: &str) -> bool {
    !path
        .split(['/', '\\'])
        .any(|part| part == ".." || part == "." || part.is_empty())
}

/// The embedded file at `path`; `None` when there is none.
fn file(request: &HttpRequest, path: &str) -> Option<HttpResponse> {
    let EmbeddedFile { data, metadata } = Files::get(path)?;
    let etag = format!("\"{}\"", hex(&metadata.sha256_hash()[..16]));
    let content_type = match metadata.mimetype() {
        text if text.starts_with("text/") || text.ends_with("javascript") => {
            format!("{text}; charset=utf-8")
        }
        other => other.to_owned(),
    };
    respond(request, &etag, &content_type, data.into_owned())
}

/// The file, or `304` when the client holds it; `None` when a header cannot be written.
fn respond(
    request: &HttpRequest,
    etag: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Option<HttpResponse> {
    let held = request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == etag);
    let mut response = if held {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, HeaderValue::from_str(etag).ok()?))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    if held {
        return Some(response.finish());
    }
    Some(
        response
            .insert_header((header::CONTENT_TYPE, content_type))
            .body(body),
    )
}

/// A file the build should have embedded is absent: a broken build, not a bad request.
fn missing(path: &str) -> HttpResponse {
    tracing::error!(path, "a page's file is missing from the build");
    HttpResponse::InternalServerError().finish()
}

/// `text` safe inside a double-quoted HTML attribute.
fn attribute(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_inside_the_folder_are_served() {
        assert!(inside_folder("app.js"));
        assert!(inside_folder("vendor/leaflet/leaflet.js"));
        for outside in [
            "../Cargo.toml",
            "vendor/../../x",
            "/etc/passwd",
            "a//b",
            "..\\x",
            "./app.js",
        ] {
            assert!(!inside_folder(outside), "{outside}");
        }
    }

    #[test]
    fn the_content_policy_names_the_tile_server_only() {
        assert_eq!(
            tile_origin("https://{s}.tile.example.org/{z}/{x}/{y}.png"),
            "https://*.tile.example.org"
        );
        assert_eq!(
            tile_origin("http://127.0.0.1:8081/{z}/{x}/{y}.png"),
            "http://127.0.0.1:8081"
        );
        assert_eq!(tile_origin(""), "");
        assert_eq!(tile_origin("https://{host}/{z}/{x}/{y}.png"), "https:");
        assert!(content_policy("").contains("img-src 'self' data:;"));
        assert!(
            content_policy("https://t.example/{z}/{x}/{y}.png")
                .contains("img-src 'self' data: https://t.example;")
        );
    }

    #[test]
    fn settings_go_into_the_page_as_attribute_text() {
        assert_eq!(attribute(r#"a"b<c>&"#), "a&quot;b&lt;c&gt;&amp;");
    }

    #[test]
    fn every_page_file_is_embedded() {
        for file in [
            "index.html",
            "docs.html",
            "app.js",
            "vendor/leaflet/leaflet.js",
        ] {
            assert!(Files::get(file).is_some(), "{file}");
        }
    }
}

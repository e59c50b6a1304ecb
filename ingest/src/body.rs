//! Request bodies: content type, `Content-Encoding: gzip`, and size limits applied to the
//! decoded bytes (a small gzip bomb is still refused).

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web::{Bytes, BytesMut, Payload};
use futures::StreamExt;

use crate::problem::{Kind, Problem};

/// The media types a route accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    NdJson,
}

/// The request's format among `accepted`, or 415.
pub fn format(request: &HttpRequest, accepted: &[Format]) -> Result<Format, Problem> {
    let essence = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    let found = match essence.as_deref() {
        Some("application/json") => Some(Format::Json),
        Some("application/x-ndjson" | "application/ndjson" | "application/jsonl") => {
            Some(Format::NdJson)
        }
        _ => None,
    };
    match found {
        Some(format) if accepted.contains(&format) => Ok(format),
        _ => {
            let names: Vec<&str> = accepted
                .iter()
                .map(|f| match f {
                    Format::Json => "application/json",
                    Format::NdJson => "application/x-ndjson",
                })
                .collect();
            Err(Problem::new(
                Kind::UnsupportedMediaType,
                format!(
                    "Content-Type {} is not accepted here; send {}",
                    essence.as_deref().unwrap_or("(none)"),
                    names.join(" or ")
                ),
            ))
        }
    }
}

/// Reads the whole body, decoding gzip/deflate, refusing more than `limit` decoded bytes.
pub async fn read(request: &HttpRequest, payload: Payload, limit: usize) -> Result<Bytes, Problem> {
    let encoding = request
        .headers()
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    let identity = match encoding.as_deref() {
        None | Some("identity") => true,
        Some("gzip" | "x-gzip" | "deflate") => false,
        Some(other) => {
            return Err(Problem::new(
                Kind::UnsupportedMediaType,
                format!("Content-Encoding {other} is not supported; use gzip or none"),
            ));
        }
    };
    let too_large = || {
        Problem::new(
            Kind::BodyTooLarge,
            format!("the body exceeds {limit} bytes"),
        )
    };
    if identity {
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(too_large());
        }
    }
    let mut stream =
        actix_web::dev::Decompress::from_headers(payload.into_inner(), request.headers());
    let mut body = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            Problem::new(Kind::MalformedJson, format!("could not read the body: {e}"))
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

//! Request bodies: content type, `Content-Encoding: gzip`, a size limit on the decoded bytes
//! that holds while decoding, and a deadline for the whole body.

use std::io::Write;
use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web::{Bytes, Payload};
use flate2::write::MultiGzDecoder;
use futures::StreamExt;

use crate::problem::{Kind, Problem};

/// The media types a route accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    NdJson,
    /// JSON Merge Patch (RFC 7396).
    MergePatch,
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
        Some("application/merge-patch+json") => Some(Format::MergePatch),
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
                    Format::MergePatch => "application/merge-patch+json",
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

/// How a body must arrive: at most `limit` bytes once decoded, all of it within `deadline`.
#[derive(Debug, Clone, Copy)]
pub struct BodyRules {
    pub limit: usize,
    pub deadline: Duration,
}

/// Reads the whole body, decoding gzip as it arrives. Decoding stops at the first byte past
/// the limit, so a small bomb never costs more memory than the limit; a body still incomplete
/// at the deadline is refused with 408 and its connection closed.
pub async fn read(
    request: &HttpRequest,
    payload: Payload,
    rules: BodyRules,
) -> Result<Bytes, Problem> {
    let mut sink = decoder(request, rules.limit)?;
    // A declared length is refused before any byte is read. gzip can only grow what it
    // cannot compress by a fraction, so a larger gzip body decodes past the limit too.
    let most = match sink {
        Decoder::Identity(_) => rules.limit as u64,
        Decoder::Gzip(_) => rules.limit as u64 + rules.limit as u64 / 64 + 1024,
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > most) {
        return Err(too_large(rules.limit));
    }
    let deadline = tokio::time::Instant::now() + rules.deadline;
    let mut stream = payload.into_inner();
    loop {
        let next = tokio::time::timeout_at(deadline, stream.next())
            .await
            .map_err(|_| {
                Problem::new(
                    Kind::BodyTimeout,
                    format!(
                        "the body did not arrive within {} s; send it whole and promptly",
                        rules.deadline.as_secs()
                    ),
                )
            })?;
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|e| Problem::new(Kind::MalformedBody, payload_error(&e)))?;
        sink.write(&chunk, rules.limit)?;
    }
    sink.finish(rules.limit)
}

/// Decodes a gzip body arriving in `chunks` exactly as [`read`] decodes one with
/// `Content-Encoding: gzip`: at most `limit` bytes, decoding stopped at the first byte past it.
pub fn gunzip<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
    limit: usize,
) -> Result<Bytes, Problem> {
    let mut sink = Decoder::Gzip(Box::new(MultiGzDecoder::new(Limited::new(limit))));
    for chunk in chunks {
        sink.write(chunk, limit)?;
    }
    sink.finish(limit)
}

/// The body so far, refusing to grow past the limit.
struct Limited {
    body: Vec<u8>,
    limit: usize,
    over: bool,
}

impl Limited {
    fn new(limit: usize) -> Self {
        Self {
            body: Vec::new(),
            limit,
            over: false,
        }
    }
}

impl Write for Limited {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let needed = self.body.len() + buf.len();
        if needed > self.limit {
            self.over = true;
            return Err(std::io::Error::other("over the limit"));
        }
        if needed > self.body.capacity() {
            // Grow by doubling, but never reserve past the limit.
            let target = needed.max(self.body.capacity() * 2).min(self.limit);
            self.body.reserve_exact(target - self.body.len());
        }
        self.body.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

enum Decoder {
    Identity(Limited),
    Gzip(Box<MultiGzDecoder<Limited>>),
}

/// The decoder the request's `Content-Encoding` names: none (identity) or gzip (also spelled
/// `x-gzip`); one encoding only, named once.
fn decoder(request: &HttpRequest, limit: usize) -> Result<Decoder, Problem> {
    let mut encodings = request.headers().get_all(header::CONTENT_ENCODING);
    let first = encodings.next().map(|v| {
        v.to_str()
            .unwrap_or("(not text)")
            .trim()
            .to_ascii_lowercase()
    });
    let sink = Limited::new(limit);
    match (first.as_deref(), encodings.next()) {
        (None | Some("identity"), None) => Ok(Decoder::Identity(sink)),
        (Some("gzip" | "x-gzip"), None) => Ok(Decoder::Gzip(Box::new(MultiGzDecoder::new(sink)))),
        (Some(other), None) => Err(Problem::new(
            Kind::UnsupportedMediaType,
            format!("Content-Encoding {other} is not supported; send gzip or no encoding"),
        )),
        (_, Some(_)) => Err(Problem::new(
            Kind::UnsupportedMediaType,
            "Content-Encoding is given more than once; send one encoding, gzip or none",
        )),
    }
}

fn too_large(limit: usize) -> Problem {
    Problem::new(
        Kind::BodyTooLarge,
        format!("the body exceeds {limit} bytes"),
    )
}

/// Why the body's bytes could not be read, in words (the server's own texts name internals).
fn payload_error(error: &actix_web::error::PayloadError) -> &'static str {
    use actix_web::error::PayloadError;
    match error {
        PayloadError::Incomplete(_) => "the body ended before its declared end",
        PayloadError::EncodingCorrupted => "the body's chunked transfer encoding is corrupt",
        PayloadError::Overflow => "the body is larger than its declared length",
        PayloadError::UnknownLength => "the body's length cannot be determined",
        _ => "the connection failed while the body was being read",
    }
}

fn not_gzip() -> Problem {
    Problem::new(
        Kind::MalformedBody,
        "the body is not valid gzip (corrupt, truncated or not compressed)",
    )
}

impl Decoder {
    fn write(&mut self, chunk: &[u8], limit: usize) -> Result<(), Problem> {
        let result = match self {
            Decoder::Identity(sink) => sink.write_all(chunk),
            Decoder::Gzip(gzip) => gzip.write_all(chunk).inspect_err(|_| drain(gzip)),
        };
        result.map_err(|_| self.error(limit))
    }

    fn finish(self, limit: usize) -> Result<Bytes, Problem> {
        match self {
            Decoder::Identity(sink) => Ok(Bytes::from(sink.body)),
            // Finishing checks the trailer: a truncated stream fails here.
            Decoder::Gzip(mut gzip) => match gzip.try_finish() {
                Ok(()) => gzip
                    .finish()
                    .map(|sink| Bytes::from(sink.body))
                    .map_err(|_| not_gzip()),
                Err(_) => {
                    drain(&mut gzip);
                    Err(Decoder::Gzip(gzip).error(limit))
                }
            },
        }
    }

    /// What a failed write or finish means: the limit was reached, or the gzip is broken. A
    /// broken stream is drained first (see [`drain`]).
    fn error(&self, limit: usize) -> Problem {
        let over = match self {
            Decoder::Identity(sink) => sink.over,
            Decoder::Gzip(gzip) => gzip.get_ref().over,
        };
        if over { too_large(limit) } else { not_gzip() }
    }
}

/// Writes out what the decoder had decoded when it failed. flate2 keeps the output of its
/// last step until the next write: when a corrupt byte stops a step, the bytes decoded before
/// it were never offered to the limit. Offered now, they count as they would have had the
/// body arrived in smaller chunks, so a body both too large and corrupt further on is too
/// large however it arrives (stream order decides). The sink still refuses past the limit.
fn drain(gzip: &mut MultiGzDecoder<Limited>) {
    // The error of the flush itself is the one already being reported, or the limit's.
    let _ = gzip.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn decode(encoded: &[u8], limit: usize, chunk: usize) -> Result<Bytes, Problem> {
        gunzip(encoded.chunks(chunk), limit)
    }

    #[test]
    fn gzip_decodes_in_any_chunking_and_across_members() {
        let text = b"{\"sensor_id\":\"a\"}".repeat(100);
        for chunk in [1, 7, 4096] {
            assert_eq!(decode(&gzip(&text), 1 << 20, chunk).unwrap(), &text[..]);
        }
        let mut two = gzip(b"[1,");
        two.extend(gzip(b"2]"));
        assert_eq!(decode(&two, 1024, 3).unwrap(), &b"[1,2]"[..]);
    }

    #[test]
    fn a_bomb_stops_at_the_limit_without_buffering_past_it() {
        let bomb = gzip(&vec![b' '; 64 << 20]);
        let limit = 1 << 20;
        let mut decoder = Decoder::Gzip(Box::new(MultiGzDecoder::new(Limited::new(limit))));
        let error = bomb
            .chunks(64 << 10)
            .try_for_each(|piece| decoder.write(piece, limit))
            .unwrap_err();
        assert_eq!(error.kind(), Some(Kind::BodyTooLarge));
        let Decoder::Gzip(gzip) = &decoder else {
            unreachable!()
        };
        assert!(gzip.get_ref().body.capacity() <= limit);
    }

    #[test]
    fn too_large_before_a_corrupt_byte_is_too_large_however_the_body_arrives() {
        // Found by the gzip fuzz target: a member whose deflate data turns corrupt after it has
        // decoded past the limit was malformed in one write and too large in 16-byte ones.
        let body: [u8; 70] = [
            0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0e, 0x03, 0x02, 0x41, 0xed, 0x8e,
            0xc2, 0x20, 0x14, 0x44, 0xef, 0xf2, 0xd7, 0xb4, 0x02, 0x4d, 0x6b, 0xc3, 0xce, 0x3b,
            0xb8, 0xd2, 0x18, 0x82, 0xf4, 0xc7, 0x12, 0x7a, 0x90, 0x42, 0x9b, 0x18, 0xe3, 0xdd,
            0xfd, 0x49, 0xb9, 0x80, 0xfb, 0xae, 0xe7, 0xcd, 0xcc, 0xbb, 0xbe, 0x21, 0x63, 0xc8,
            0x71, 0xd6, 0x6e, 0x00, 0x00, 0x00, 0x10, 0x07, 0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00,
        ];
        for chunk in [1, 16, body.len()] {
            let error = decode(&body, 100, chunk).unwrap_err();
            assert_eq!(error.kind(), Some(Kind::BodyTooLarge), "chunks of {chunk}");
        }
        let error = decode(&body, 1 << 20, body.len()).unwrap_err();
        assert_eq!(error.kind(), Some(Kind::MalformedBody), "within the limit");
    }

    #[test]
    fn broken_or_truncated_gzip_is_malformed_in_words() {
        let whole = gzip(b"[1,2,3]");
        for broken in [
            &whole[..whole.len() - 3],
            &whole[..12],
            &b"not gzip at all"[..],
        ] {
            let error = decode(broken, 1024, 5).unwrap_err();
            assert_eq!(error.kind(), Some(Kind::MalformedBody), "{broken:?}");
            assert!(!error.detail.contains("Custom"), "{}", error.detail);
        }
    }
}

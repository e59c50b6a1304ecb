//! gzip bodies, decoded with a limit as `Content-Encoding: gzip` bodies are (`body::gunzip`).
//! Input: a mode byte, the limit (u16, little-endian), a chunk size, then the data. Mode even:
//! the data is the body as sent. Checks: the output never exceeds the limit; the outcome does
//! not depend on how the body is chunked; what is accepted is exactly what a plain gzip reader
//! reads. Mode odd: the data is compressed here first (bit 1: as two gzip members) and must come
//! back whole when within the limit, refused as too large otherwise.
#![no_main]

use std::io::{Read, Write};

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use ingest::body::gunzip;
use ingest::problem::{Kind, Problem};
use libfuzzer_sys::fuzz_target;

fn gzip(data: &[u8], level: Compression) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), level);
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn same_outcome(whole: &Result<Bytes, Problem>, pieces: &Result<Bytes, Problem>) {
    match (whole, pieces) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(a), Err(b)) => assert_eq!(a.kind(), b.kind(), "{a} / {b}"),
        _ => panic!("the outcome depends on the chunking: {whole:?} / {pieces:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((head, rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let mode = head[0];
    let limit = usize::from(u16::from_le_bytes([head[1], head[2]]));
    let chunk = usize::from(head[3]).max(1);
    if mode & 1 == 0 {
        let whole = gunzip([rest], limit);
        let pieces = gunzip(rest.chunks(chunk), limit);
        same_outcome(&whole, &pieces);
        match &whole {
            Ok(body) => {
                assert!(
                    body.len() <= limit,
                    "{} bytes over a limit of {limit}",
                    body.len()
                );
                let mut plain = Vec::new();
                flate2::read::MultiGzDecoder::new(rest)
                    .read_to_end(&mut plain)
                    .expect("accepted, yet a gzip reader refuses it");
                assert_eq!(&plain[..], &body[..]);
            }
            Err(problem) => assert!(
                matches!(
                    problem.kind(),
                    Some(Kind::BodyTooLarge | Kind::MalformedBody)
                ),
                "{problem}"
            ),
        }
    } else {
        let level = Compression::new(u32::from(mode >> 4) % 10);
        let encoded = if mode & 2 == 0 {
            gzip(rest, level)
        } else {
            let (a, b) = rest.split_at(rest.len() / 2);
            [gzip(a, level), gzip(b, level)].concat()
        };
        match gunzip(encoded.chunks(chunk), limit) {
            Ok(body) => {
                assert!(rest.len() <= limit);
                assert_eq!(&body[..], rest);
            }
            Err(problem) => {
                assert!(rest.len() > limit, "refused within the limit: {problem}");
                assert_eq!(problem.kind(), Some(Kind::BodyTooLarge), "{problem}");
            }
        }
    }
});

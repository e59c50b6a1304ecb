//! A batch body, split as `POST /v1/events/batch` splits it (`split_batch`): the first byte
//! picks JSON (even) or NDJSON (odd), the rest is the body. Checks: JSON items are numbered
//! 0.., NDJSON items by their line, one per non-blank line; only a JSON body is refused whole,
//! as malformed JSON; each item that parses is a reading within every documented range.
#![no_main]

use ingest::body::Format;
use ingest::problem::Kind;
use ingest::routes::events::split_batch;
use libfuzzer_sys::fuzz_target;
use smart_traffic_fuzz::{check_reading, now};
use traffic_model::reading::Reading;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let format = if selector & 1 == 0 {
        Format::Json
    } else {
        Format::NdJson
    };
    let items = match split_batch(body, format) {
        Ok(items) => items,
        Err(problem) => {
            assert_eq!(format, Format::Json, "NDJSON is refused line by line");
            assert_eq!(problem.kind(), Some(Kind::MalformedJson));
            return;
        }
    };
    if format == Format::Json {
        assert!(items.iter().enumerate().all(|(i, (index, _))| i == *index));
    } else {
        let lines: Vec<&[u8]> = body.split(|b| *b == b'\n').collect();
        let blank = |line: &[u8]| line.iter().all(u8::is_ascii_whitespace);
        assert_eq!(items.len(), lines.iter().filter(|l| !blank(l)).count());
        assert!(items.windows(2).all(|w| w[0].0 < w[1].0), "out of order");
        assert!(items.iter().all(|(index, _)| !blank(lines[*index])));
    }
    let now = now();
    for (_, item) in items {
        match item {
            Ok(input) => {
                if let Ok(reading) = Reading::from_input(input, now) {
                    check_reading(&reading, now);
                }
            }
            Err(errors) => assert!(!errors.is_empty()),
        }
    }
});

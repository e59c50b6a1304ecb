//! A JSON reading, parsed as `POST /v1/events` parses a body (`ReadingInput`, then
//! `Reading::from_input`) and as the MCP tools parse an argument (`Reading::from_json`).
//! Checks: an accepted reading is within every documented range and survives its JSON form and
//! its stored columns; both paths agree; a refusal names at least one field rule.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use smart_traffic_fuzz::{check_reading, now};
use traffic_model::document::Document;
use traffic_model::reading::{Reading, ReadingInput};

fuzz_target!(|data: &[u8]| {
    let now = now();
    let value = serde_json::from_slice::<Value>(data);
    // The metadata routes read JSON through `Document`: the same value, repeats named.
    let document = Document::parse(data);
    assert_eq!(document.is_ok(), value.is_ok());
    if let (Ok(document), Ok(value)) = (&document, &value) {
        assert_eq!(&document.value, value);
    }
    let Ok(input) = serde_json::from_slice::<ReadingInput>(data) else {
        return;
    };
    let repeated = matches!(&input, ReadingInput::Object(wire) if !wire.repeated.is_empty());
    match Reading::from_input(input, now) {
        Ok(reading) => {
            assert!(!repeated, "a repeated member was let through");
            check_reading(&reading, now);
            let value = value.expect("a reading is JSON");
            let again = Reading::from_json(value, now).expect("accepted as text, not as a value");
            assert_eq!(again, reading);
        }
        Err(error) => {
            assert!(!error.errors.is_empty(), "refused without a reason");
            assert!(error.to_string().starts_with("invalid reading: "));
        }
    }
});

//! The arguments of an MCP tool call, read as the tools read them (`ArgReader`): the first byte
//! picks `classify`, `classify_by_id` or `classify_batch`, the rest is the arguments object.
//! The arguments that pass are then classified as the tool would. Checks: `finish` fails
//! exactly when an error was noted, and every error names an argument sent or a field of one;
//! each reading read is within every documented range; ids are positive; `stored_history` and
//! `sites` are within their bounds; a batch answers every reading once, in order;
//! classifications are within range.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_classifier::server::args::{
    ArgReader, MAX_BATCH_EVENTS, MAX_HISTORY, MAX_STORED_HISTORY_MINUTES,
    MAX_STORED_HISTORY_READINGS,
};
use mcp_classifier::server::batch::{self, BatchItem};
use rmcp::model::JsonObject;
use smart_traffic_fuzz::{check_classification, check_reading, now};
use traffic_model::reading::Reading;
use traffic_model::rules::{self, RulesConfig};

fn classify(args: JsonObject) {
    let now = now();
    let known = ["event", "history", "site"];
    let keys: Vec<String> = args.keys().cloned().collect();
    let mut reader = ArgReader::new(Some(args), &known, now);
    let event = reader.reading("event");
    let history = reader.readings("history", MAX_HISTORY);
    let site = reader.site("site").unwrap_or_default();
    for reading in event.iter().chain(&history) {
        check_reading(reading, now);
    }
    match reader.finish(event) {
        Ok(event) => {
            let classification =
                rules::classify_at_site(&event, &history, &site, &RulesConfig::default());
            check_classification(&classification);
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "refused without a reason");
            // Each names an argument sent, or a field within one of the tool's.
            for error in &errors.0 {
                let field = error.field.as_str();
                assert!(
                    keys.iter().any(|key| key == field)
                        || known.iter().any(|name| field.starts_with(name)),
                    "{field:?}: {}",
                    error.message
                );
            }
        }
    }
}

fn classify_by_id(args: JsonObject) {
    let mut reader = ArgReader::new(Some(args), &["id"], now());
    let id = reader.id("id");
    match reader.finish(id) {
        Ok(id) => assert!(id >= 1),
        Err(errors) => assert!(!errors.0.is_empty()),
    }
}

fn classify_batch(args: JsonObject) {
    let now = now();
    let known = [
        "events",
        "history",
        "stored_history",
        "sites",
        "stored_sites",
    ];
    let mut reader = ArgReader::new(Some(args), &known, now);
    let events = reader.raw_readings("events", true, MAX_BATCH_EVENTS);
    let history = reader.readings("history", MAX_HISTORY);
    let stored = reader.stored_history("stored_history");
    let sites = reader.sites("sites");
    let _stored_sites = reader.flag("stored_sites");
    assert!(events.len() <= MAX_BATCH_EVENTS && history.len() <= MAX_HISTORY);
    if let Some(stored) = stored {
        assert!((1..=MAX_STORED_HISTORY_READINGS).contains(&stored.readings));
        assert!((1..=MAX_STORED_HISTORY_MINUTES).contains(&stored.minutes));
    }
    for reading in &history {
        check_reading(reading, now);
    }
    if reader.finish(Some(())).is_err() {
        return;
    }
    assert!(!events.is_empty());
    let count = events.len();
    let events: Vec<_> = events
        .into_iter()
        .map(|value| Reading::from_json(value, now).map_err(|e| e.errors))
        .collect();
    for reading in events.iter().flatten() {
        check_reading(reading, now);
    }
    let output = batch::classify_batch(events, history, &sites, &RulesConfig::default());
    assert_eq!(output.results.len(), count);
    for (i, item) in output.results.iter().enumerate() {
        match item {
            BatchItem::Classified {
                index,
                classification,
            } => {
                assert_eq!(*index, i);
                check_classification(classification);
            }
            BatchItem::Rejected { index, error } => {
                assert_eq!(*index, i);
                assert!(!error.errors.is_empty());
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&tool, text)) = data.split_first() else {
        return;
    };
    let Ok(args) = serde_json::from_slice::<JsonObject>(text) else {
        return;
    };
    match tool % 3 {
        0 => classify(args),
        1 => classify_by_id(args),
        _ => classify_batch(args),
    }
});

//! Prompts that turn a control-room question into the right tool calls: an incident briefing
//! for a sensor or a road, and a corridor report for a road. Each tells the model which query
//! tools to call, with which arguments, and how to present the answer. Offered only with the
//! events database, since the tools they name are.

use chrono::{TimeDelta, Utc};
use rmcp::ErrorData as McpError;
use rmcp::model::{GetPromptResult, JsonObject, Prompt, PromptArgument, PromptMessage, Role};

pub const INCIDENT_BRIEFING: &str = "incident_briefing";
pub const CORRIDOR_REPORT: &str = "corridor_report";
pub const PROMPT_NAMES: [&str; 2] = [INCIDENT_BRIEFING, CORRIDOR_REPORT];
/// The longest window a prompt asks about, in hours (`find_congestion` takes 31 days).
const MAX_HOURS: i64 = 744;

pub fn list() -> Vec<Prompt> {
    let hours = |default: i64| {
        PromptArgument::new("hours")
            .with_description(format!(
                "How many hours back from now to look (1–{MAX_HOURS}; default {default})"
            ))
            .with_required(false)
    };
    vec![
        Prompt::new(
            INCIDENT_BRIEFING,
            Some(
                "Brief a control room on congestion at a sensor or along a road: what is \
                 jammed now, since when, how bad, and what the data quality is",
            ),
            Some(vec![
                PromptArgument::new("sensor_id")
                    .with_description("The sensor to brief on (or give `road`)")
                    .with_required(false),
                PromptArgument::new("road")
                    .with_description("The road to brief on, e.g. A1 (or give `sensor_id`)")
                    .with_required(false),
                hours(3),
            ]),
        )
        .with_title("Incident briefing"),
        Prompt::new(
            CORRIDOR_REPORT,
            Some(
                "A report on one road over a window: its sensors, when and where it was \
                 congested, its busiest hours, and sensors to check",
            ),
            Some(vec![
                PromptArgument::new("road")
                    .with_description("The road, e.g. A1")
                    .with_required(true),
                hours(24),
            ]),
        )
        .with_title("Corridor report"),
    ]
}

/// The prompt `name` with `arguments` filled in; unknown names and bad arguments are
/// `-32602` (invalid params) saying what to pass.
pub fn get(name: &str, arguments: Option<&JsonObject>) -> Result<GetPromptResult, McpError> {
    let text = |key: &str| -> Result<Option<String>, McpError> {
        match arguments.and_then(|a| a.get(key)) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.trim().to_owned())),
            Some(other) => Err(invalid(format!("`{key}` must be a string, got {other}"))),
        }
    };
    let hours = |default: i64| -> Result<i64, McpError> {
        match text("hours")? {
            None => Ok(default),
            Some(raw) => raw
                .parse::<i64>()
                .ok()
                .filter(|h| (1..=MAX_HOURS).contains(h))
                .ok_or_else(|| {
                    invalid(format!(
                        "`hours` must be a whole number from 1 to {MAX_HOURS}"
                    ))
                }),
        }
    };
    let to = Utc::now();
    let window = |hours: i64| {
        let from = to - TimeDelta::hours(hours);
        (
            from.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            to.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        )
    };
    match name {
        INCIDENT_BRIEFING => {
            let (sensor, road) = (text("sensor_id")?, text("road")?);
            let hours = hours(3)?;
            let (from, to) = window(hours);
            let (subject, scope) = match (&sensor, &road) {
                (Some(id), _) => (format!("sensor {id}"), format!("\"sensor_id\": \"{id}\"")),
                (None, Some(road)) => (format!("road {road}"), format!("\"road\": \"{road}\"")),
                (None, None) => return Err(invalid("give `sensor_id` or `road`".to_owned())),
            };
            let detail = match &sensor {
                Some(id) => format!(
                    "2. Call `sensor_info` with {{\"sensor_id\": \"{id}\"}} for its lanes now and \
                     its day so far.\n3. Call `sensor_series` with {{\"sensor_id\": \"{id}\", \
                     \"from\": \"{from}\", \"to\": \"{to}\", \"bucket\": \"5m\"}} to see speed \
                     and flow fall and recover."
                ),
                None => format!(
                    "2. Call `traffic_state` with {scope} for the road's lanes now (worst, stale \
                     and flagged).\n3. For the two worst periods, call `sensor_series` on their \
                     sensor with \"bucket\": \"5m\" over the period and a half hour either side."
                ),
            };
            Ok(briefing(
                format!("Incident briefing for {subject}, last {hours} h"),
                format!(
                    "Brief the traffic control room on congestion on {subject} over the last \
                     {hours} hours ({from} to {to}).\n\n\
                     1. Call `find_congestion` with {{\"from\": \"{from}\", \"to\": \"{to}\", \
                     {scope}}} (and again with \"min_label\": \"heavy\" if nothing is \
                     congested). A period with `began_before_window` started earlier: call again \
                     with an earlier `from` to say since when.\n{detail}\n\n\
                     Answer with: a one-line headline (is it jammed now, since when); a table of \
                     the periods (sensor, lane, start and end in the sensor's local time, \
                     duration, worst Level of Service), ongoing ones first; what the speeds and \
                     flows did; and the data quality — stale lanes and flags — that limits what \
                     can be said. Quote times with their zone and say when there was no \
                     congestion rather than guessing."
                ),
            ))
        }
        CORRIDOR_REPORT => {
            let road = text("road")?.ok_or_else(|| invalid("give `road`".to_owned()))?;
            let hours = hours(24)?;
            let (from, to) = window(hours);
            Ok(briefing(
                format!("Corridor report for {road}, last {hours} h"),
                format!(
                    "Write a corridor report for road {road} over the last {hours} hours \
                     ({from} to {to}).\n\n\
                     1. Call `list_sensors` with {{\"road\": \"{road}\"}} (follow `next_cursor`) \
                     for the corridor's sensors in order.\n\
                     2. Call `traffic_state` with {{\"road\": \"{road}\"}} for its lanes now.\n\
                     3. Call `find_congestion` with {{\"from\": \"{from}\", \"to\": \"{to}\", \
                     \"road\": \"{road}\", \"min_label\": \"heavy\"}}.\n\
                     4. For the sensor with the longest congestion, call `sensor_series` with \
                     \"bucket\": \"1h\" over the window.\n\n\
                     Answer with: the corridor's state now in one sentence; when and where it \
                     was heavy or congested (a table by sensor in road order: periods, total \
                     minutes, worst Level of Service); the busiest hours; and the sensors to \
                     check (stale, flagged). Keep it under 300 words and quote times in the \
                     sensors' local time."
                ),
            ))
        }
        other => Err(invalid(format!(
            "no prompt {other}: prompts/list names them ({})",
            PROMPT_NAMES.join(", ")
        ))),
    }
}

fn briefing(description: String, text: String) -> GetPromptResult {
    GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
        .with_description(description)
}

fn invalid(message: String) -> McpError {
    McpError::invalid_params(message, None)
}

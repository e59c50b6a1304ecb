//! Agreement between the classification rules and Eclipse SUMO's own density.
//!
//! Reads the NDJSON `tools/sumo/generate.py` writes (one `{"scenario", "reading",
//! "sim_density_veh_km_lane", ...}` per line) from stdin, classifies every reading with
//! `rules::classify` (the same detector's earlier readings as history), maps the simulator's
//! density to LOS with the same HCM thresholds and to the label that LOS implies, and prints per
//! scenario, as markdown: n, LOS exact agreement, within one band, label agreement, the share of
//! labels made worse by speed evidence, and the 6 × 6 LOS confusion table (rows: simulator,
//! columns: classifier).
//!
//! ```text
//! cargo run -p traffic-model --example sumo_agreement < /tmp/sumo-run/readings.ndjson
//! cargo run -p traffic-model --example sumo_agreement -- --config cfg.json < readings.ndjson
//! ```
//! `--config` takes a JSON object overriding any subset of `RulesConfig`.

use std::collections::{BTreeMap, HashMap};
use std::error::Error;
use std::io::{BufRead, Write};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use strum::VariantArray;
use traffic_model::classification::{Flag, Label, LevelOfService};
use traffic_model::reading::Reading;
use traffic_model::rules::{RulesConfig, classify, level_of_service};

/// One line of the generator's output.
#[derive(Deserialize)]
struct Line {
    scenario: String,
    reading: serde_json::Value,
    sim_density_veh_km_lane: f64,
}

/// Earlier readings passed as history, per detector: enough for every history rule.
const HISTORY_KEEP: usize = 240;

fn band(los: LevelOfService) -> usize {
    LevelOfService::VARIANTS
        .iter()
        .position(|b| *b == los)
        .unwrap_or(0)
}

/// The label a LOS implies (the rules' documented mapping).
fn implied_label(los: LevelOfService) -> Label {
    match los {
        LevelOfService::A | LevelOfService::B => Label::FreeFlow,
        LevelOfService::C | LevelOfService::D => Label::Moderate,
        LevelOfService::E => Label::Heavy,
        LevelOfService::F => Label::Congested,
    }
}

#[derive(Default)]
struct Tally {
    n: usize,
    exact: usize,
    within_one: usize,
    label_agree: usize,
    no_los: usize,
    /// Readings whose label is worse than their own LOS implies (speed evidence).
    overrides: usize,
    /// [simulator band][classifier band]
    confusion: [[usize; 6]; 6],
    flags: BTreeMap<Flag, usize>,
    labels: BTreeMap<Label, usize>,
}

fn pct(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

fn config_from_args() -> Result<RulesConfig, Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => Ok(RulesConfig::default()),
        [flag, path] if flag == "--config" => {
            Ok(serde_json::from_str(&std::fs::read_to_string(path)?)?)
        }
        _ => Err("usage: sumo_agreement [--config rules.json] < readings.ndjson".into()),
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let config = config_from_args()?;
    // The future-skew rule is about live sensor clocks; simulated readings are checked against a
    // clock far ahead of them.
    let clock: DateTime<Utc> = "2100-01-01T00:00:00Z".parse()?;

    let mut order: Vec<String> = Vec::new();
    let mut tallies: HashMap<String, Tally> = HashMap::new();
    let mut histories: HashMap<(String, String, Option<u8>), Vec<Reading>> = HashMap::new();

    for (number, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let line: Line =
            serde_json::from_str(&line).map_err(|e| format!("line {}: {e}", number + 1))?;
        let reading = Reading::from_json(line.reading, clock)
            .map_err(|e| format!("line {}: {e}", number + 1))?;

        let key = (
            line.scenario.clone(),
            reading.sensor_id().to_string(),
            reading.lane(),
        );
        let history = histories.entry(key).or_default();
        let c = classify(&reading, history, &config);
        history.push(reading);
        if history.len() > HISTORY_KEEP {
            history.remove(0);
        }

        if !tallies.contains_key(&line.scenario) {
            order.push(line.scenario.clone());
        }
        let tally = tallies.entry(line.scenario).or_default();
        let sim = level_of_service(line.sim_density_veh_km_lane, &config);
        tally.n += 1;
        *tally.labels.entry(c.label).or_default() += 1;
        for flag in &c.flags {
            *tally.flags.entry(*flag).or_default() += 1;
        }
        if c.label == implied_label(sim) {
            tally.label_agree += 1;
        }
        match c.level_of_service {
            None => tally.no_los += 1,
            Some(los) => {
                if c.label != implied_label(los) {
                    tally.overrides += 1;
                }
                let (s, k) = (band(sim), band(los));
                if let Some(cell) = tally.confusion.get_mut(s).and_then(|row| row.get_mut(k)) {
                    *cell += 1;
                }
                if s == k {
                    tally.exact += 1;
                }
                if s.abs_diff(k) <= 1 {
                    tally.within_one += 1;
                }
            }
        }
    }

    let mut out = std::io::stdout().lock();
    for scenario in &order {
        let Some(t) = tallies.get(scenario) else {
            continue;
        };
        writeln!(out, "#### {scenario}\n")?;
        writeln!(
            out,
            "| n | LOS exact | LOS within one band | label agreement | speed overrides | no LOS from classifier |"
        )?;
        writeln!(out, "|---:|---:|---:|---:|---:|---:|")?;
        writeln!(
            out,
            "| {} | {:.1} % | {:.1} % | {:.1} % | {:.1} % | {} |\n",
            t.n,
            pct(t.exact, t.n),
            pct(t.within_one, t.n),
            pct(t.label_agree, t.n),
            pct(t.overrides, t.n),
            t.no_los
        )?;
        writeln!(
            out,
            "| simulator ↓ / classifier → | A | B | C | D | E | F |"
        )?;
        writeln!(out, "|---|---:|---:|---:|---:|---:|---:|")?;
        for (los, row) in LevelOfService::VARIANTS.iter().zip(t.confusion.iter()) {
            let cells: Vec<String> = row.iter().map(usize::to_string).collect();
            writeln!(out, "| **{los}** | {} |", cells.join(" | "))?;
        }
        let labels: Vec<String> = t.labels.iter().map(|(l, n)| format!("{l} {n}")).collect();
        let flags: Vec<String> = t.flags.iter().map(|(f, n)| format!("{f} {n}")).collect();
        writeln!(
            out,
            "\nLabels: {}. Flags: {}.\n",
            labels.join(", "),
            if flags.is_empty() {
                "none".to_owned()
            } else {
                flags.join(", ")
            }
        )?;
    }
    Ok(())
}
